"""Shared helpers for the real-stack tests: a target file that describes a running embedded model."""

from __future__ import annotations

from pathlib import Path

from harness.kazoo.provision import Provisioner
from harness.model.stack import RunningModel

NEW_IP = "127.0.0.77"
NEW_NUMBER = "+14155550177"
NEW_DB_NUMBER = "+19995550100"  # its numbers database does not exist before


def model_target_file(
    model: RunningModel,
    directory: Path,
    *,
    name: str = "model",
    extra: str = "",
    safety: str = "allow_malformed = true\nallow_provisioning = true\nrate_limit = 0\n",
    esl_password_env: str | None = None,
    couch_env: tuple[str, str] | None = None,
) -> Path:
    """Write a TOML target file for ``model`` (its free ports) and return its path."""
    couch_host_port = model.couch_url.removeprefix("http://")
    esl_line = f'password_env = "{esl_password_env}"\n' if esl_password_env else ""
    couch_lines = f'username_env = "{couch_env[0]}"\npassword_env = "{couch_env[1]}"\n' if couch_env else ""
    text = f"""
name = "{name}"
profile = "{model.release.name}"

[[sbc]]
name = "sbc1"
host = "{model.sbc[0]}"
port = {model.sbc[1]}

[media]
host = "{model.media[0]}"
port = {model.media[1]}

[carriers]
listed = "127.0.0.10"
unlisted = "127.0.0.66"
sbc_self = "{model.sbc[0]}"

[numbers]
routed = "+14155550100"
absent = "+14155550199"

[[esl]]
name = "fs"
host = "{model.esl[0]}"
port = {model.esl[1]}
{esl_line}
[couch]
url = "http://{couch_host_port}"
{couch_lines}
[[logs]]
name = "freeswitch"
kind = "file"
path = "{model.log_dir / "freeswitch.log"}"

[[logs]]
name = "kamailio"
kind = "file"
path = "{model.log_dir / "kamailio.log"}"

[[logs]]
name = "kazoo"
kind = "file"
path = "{model.log_dir / "kazoo.log"}"

[kazoo]
node = "{model.node}"
route_timeout = {model.config.route_timeout}

[safety]
{safety}
{extra}
"""
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def provision_everything(prov: Provisioner) -> str:
    prov.acl_entry(f"{NEW_IP}/32", name="harness_test")
    account = prov.account(name="harness test account")
    prov.number(NEW_NUMBER, state="in_service", account_id=account, callflow=True)
    prov.number(NEW_DB_NUMBER, state="reserved", account_id=account, callflow=False)
    # an existing document changed too: the routed number goes out of service
    prov.edit("numbers/+1415", "+14155550100", lambda doc: doc.update(pvt_state="available"))
    return account
