"""A small helper for the configuration checks of the 5.x port (harness/kazoo_sbc/edits_5x.py): a ported
copy of the 5.x tree with the site values in its local.cfg, and ``kamailio -c`` on it (or on a variant
with a role switched on). Nothing runs here: the running 5.x SBC in the tests is the harness's own
launcher (harness.kazoo_sbc.launcher.KazooSbc).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from harness.kazoo_sbc.edits_5x import KAMAILIO_ARGS_5X, SITE_VALUES_5X, port_5x
from harness.lab.kamailio import free_ports, kamailio_available, kamailio_binary, kamailio_module_dir

PRISTINE_5X = Path(__file__).resolve().parents[3] / "shared" / "kazoo-configs-kamailio" / "5.x" / "kamailio"
_INSTALL = (
    "apt-get install kamailio kamailio-kazoo-modules kamailio-sqlite-modules kamailio-extra-modules "
    "kamailio-utils-modules kamailio-json-modules kamailio-outbound-modules kamailio-presence-modules "
    "kamailio-tls-modules kamailio-websocket-modules sqlite3 rabbitmq-server"
)


def config_unavailable() -> str | None:
    """None when the 5.x tree can be checked here (Kamailio and the modules it loads), else why not."""
    reason = kamailio_available()
    if reason is not None:
        return reason
    if not PRISTINE_5X.is_dir():
        return f"Kazoo's 5.x configuration not found at {PRISTINE_5X} (../shared beside the repository)"
    module_dir = kamailio_module_dir()
    assert module_dir is not None
    for module in ("kazoo", "db_sqlite", "jsonrpcs", "presence", "outbound", "websocket", "tls", "uuid"):
        if not (module_dir / f"{module}.so").is_file():
            return f"kamailio module {module}.so missing ({_INSTALL})"
    return None


def site_local_cfg(values: dict[str, str]) -> str:
    """The site-value lines for local.cfg, in SITE_VALUES_5X's order (every name must be known)."""
    known = {site.name: site for site in SITE_VALUES_5X}
    unknown = set(values) - set(known)
    if unknown:
        raise KeyError(f"not a 5.x site value: {sorted(unknown)}")
    return "".join(known[name].line(values[name]) + "\n" for name in known if name in values)


def copy_tree(source: Path, dest: Path) -> Path:
    """A writable copy of a configuration directory (the ../shared tree is read-only)."""
    shutil.copytree(source, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


class Ported5x:
    """The ported 5.x tree in ``work`` with site values in its local.cfg, for ``kamailio -c``."""

    def __init__(
        self, work: Path, amqp_url: str, *, source: Path = PRISTINE_5X, ip: str = "127.0.0.1"
    ) -> None:
        self.work = work
        self.ip = ip
        self.cfg = copy_tree(source, work / "cfg")
        self.applied = port_5x(self.cfg)
        self.sip_port, alg_port, local_route_port, prometheus_port = free_ports(ip, 4)
        data = work / "data"
        data.mkdir(parents=True)
        self.site = {
            "MY_HOSTNAME": "kh-sbc5.test",
            "MY_IP_ADDRESS": ip,
            "MY_LOCAL_IP": ip,
            "SIP_PORT": str(self.sip_port),
            "ALG_PORT": str(alg_port),
            "PROMETHEUS_PORT": str(prometheus_port),
            "KZ_LOCAL_ROUTE_PORT": str(local_route_port),
            "MY_AMQP_URL": amqp_url,
            "KAZOO_DATA_DIR": str(data),
            "KAZOO_DB_URL": f"sqlite:///{data / 'kazoo.db'}",  # + the absolute path's own slash: four
            "CHILDREN": "2",
            "TCP_CHILDREN": "2",
        }
        user = (self.cfg / "local.cfg").read_text(encoding="utf-8")
        (self.cfg / "local.cfg").write_text(site_local_cfg(self.site) + user, encoding="utf-8")

    def command(self, *extra: str) -> list[str]:
        binary = kamailio_binary()
        assert binary is not None
        return [binary, "-f", str(self.cfg / "kamailio.cfg"), *KAMAILIO_ARGS_5X, *extra]

    def variant(self, dest: Path, local_cfg: str) -> Path:
        """The ported tree seen from ``dest`` with ``local_cfg`` first in its local.cfg (a role switched
        on, say): symbolic links to every other file, so a variant costs no copy and no port."""
        dest.mkdir(parents=True)
        for entry in self.cfg.iterdir():
            if entry.name != "local.cfg":
                (dest / entry.name).symlink_to(entry)
        (dest / "local.cfg").write_text(local_cfg + (self.cfg / "local.cfg").read_text(), encoding="utf-8")
        return dest

    def check(self, tree: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``kamailio -c`` of the ported tree (or of a :meth:`variant`): parse it with its local.cfg and
        load every module. stderr and stdout are both in ``stdout``."""
        tree = tree or self.cfg
        command = self.command("-c")
        command[command.index("-f") + 1] = str(tree / "kamailio.cfg")
        return subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, cwd=tree
        )
