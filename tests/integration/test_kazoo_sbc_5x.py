"""Kazoo's 5.x Kamailio configuration, ported by EDITS_5X, parses and runs on Debian's Kamailio 5.6.

``kamailio -c`` checks the ported tree with the site values of a local.cfg (default roles, then each
optional role; kazoo_sbc5_stack.py, a test-only helper for those checks); then the harness's own launcher
(harness.kazoo_sbc.launcher.KazooSbc, what the kazoo-sbc target runs) starts it for real: one private
RabbitMQ for the module, the SQLite database from the tree's db_scripts with the embedded model's media
role (FreeSWITCH's part, on its own loopback address) in the dispatcher table and the demo's listed
carrier in the permissions address table, and the ported Kamailio with ``-DD -E``. Carriers send real
INVITEs; the media role answers them as Kazoo's FreeSWITCH does.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kazoo_sbc5_stack import PRISTINE_5X, Ported5x, config_unavailable, copy_tree

from harness.kazoo.release import KAZOO_5
from harness.kazoo_sbc.database import AddressRow
from harness.kazoo_sbc.launcher import KazooSbc, copy_config, kazoo_sbc_available
from harness.kazoo_sbc.localcfg import set_roles
from harness.kazoo_sbc.rabbit import RabbitBroker
from harness.kazoo_sbc.stackdata import dispatcher_rows
from harness.lab.kamailio import kamailio_binary
from harness.model.stack import ModelConfig, RunningModel, start_model
from harness.net.carrier import CarrierUA
from harness.net.exchange import Exchange
from harness.sip import builder
from harness.sip.mutators import apply_mutators
from harness.targets.gate import own_stack_gate

GATE = own_stack_gate("the harness's own tests")  # these tests send to their own stack

_CONFIG_SKIP = config_unavailable()
_STACK_SKIP = kazoo_sbc_available()
needs_config = pytest.mark.skipif(_CONFIG_SKIP is not None, reason=_CONFIG_SKIP or "")
needs_stack = pytest.mark.skipif(_STACK_SKIP is not None, reason=_STACK_SKIP or "")

MEDIA_IP = "127.0.5.20"  # the media role's own loopback address, apart from Kamailio's 127.0.0.1
LISTED = "127.0.0.10"  # the demo's trusted carrier (docs/demo-data.md)
LISTED_CIDR = "127.0.1.25"  # trusted by the model's ACLs (127.0.1.0/24), not in the address table at start
UNLISTED = "127.0.0.66"
ROUTED, NO_CALLFLOW, ABSENT = "+14155550100", "+14155550104", "+14155550199"
SILENCE_WINDOW = 0.3  # how long no reply is watched for once the log line proving the drop is there
# Optional roles of 5.x that the edits make parse, with what each needs in local.cfg besides the role.
OPTIONAL_ROLES = {
    "TRAFFIC_FILTER_ROLE": "",
    "WEBSOCKETS_ROLE": "",
    "TLS_ROLE": "",
    "ANTIFLOOD_ROLE": "",
    "RATE_LIMITER_ROLE": "",
    "ACL_ROLE": "",
    "MESSAGE_ROLE": "",
    "PUSHER_ROLE": "",
    "REGISTRAR_SYNC_ROLE": "",
    "PRESENCE_NOTIFY_SYNC_ROLE": "",
    "SIP_TRACE_ROLE": "",
    "SIP_TRACE_ALL_ROLE": "",
    "ACCOUNTING_ROLE": "",
    "BLOCKER_ROLE": "",
    "PUSH_NOTIFICATIONS_ROLE": (
        '#!substdef "!PUSH_NOTIFICATIONS_URL!http://127.0.0.1:9!g"\n'
        '#!substdef "!PUSH_NOTIFICATIONS_APP_NAME!com.example.voip!g"\n'
    ),
}


# ---------------------------------------------------------------- kamailio -c


@needs_config
def test_the_pristine_tree_does_not_parse_on_debians_kamailio(tmp_path: Path) -> None:
    """What the edits are for: stock 5.6 stops at the fork's first import_files."""
    tree = copy_tree(PRISTINE_5X, tmp_path / "cfg")
    binary = kamailio_binary()
    assert binary is not None
    command = [binary, "-c", "-f", str(tree / "kamailio.cfg"), "-M", "32"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0
    assert "kamailio.cfg, line 44" in result.stderr  # import_files "local.d/*.cfg"


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Ported5x:
    """One ported tree with site values, for the config checks (no process runs: no broker needed)."""
    if _CONFIG_SKIP is not None:
        pytest.skip(_CONFIG_SKIP)
    return Ported5x(tmp_path_factory.mktemp("checked"), "amqp://guest:guest@127.0.0.1:9")


@needs_config
def test_the_ported_tree_passes_the_config_check_with_site_values(checked: Ported5x) -> None:
    ported = checked
    result = ported.check()
    assert result.returncode == 0, result.stdout[-3000:]
    assert "config file ok" in result.stdout
    output = result.stdout
    assert f"udp: 127.0.0.1:{ported.sip_port}" in output  # the site values reached the listeners
    assert f"tcp: 127.0.0.1:{ported.site['KZ_LOCAL_ROUTE_PORT']}" in output
    assert not re.search(r"^\s*\d+\(\d+\) (ERROR|CRITICAL)", output, re.MULTILINE), output[-3000:]


@needs_config
@pytest.mark.parametrize("role", sorted(OPTIONAL_ROLES))
def test_the_ported_tree_passes_the_config_check_with_an_optional_role_on(
    checked: Ported5x, tmp_path: Path, role: str
) -> None:
    result = checked.check(checked.variant(tmp_path / "cfg", f"#!define {role}\n{OPTIONAL_ROLES[role]}"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "config file ok" in result.stdout


@needs_config
def test_two_optional_roles_can_be_too_many_defines_for_stock_kamailio(
    checked: Ported5x, tmp_path: Path
) -> None:
    """A limit of stock 5.6, not of the port (docs/kazoo-sbc-5x-port.md): the tree's pre-processor
    defines, plus one per loaded module, are near Kamailio's MAX_DEFINES (512) with the default roles."""
    tree = checked.variant(tmp_path / "cfg", "#!define WEBSOCKETS_ROLE\n#!define TLS_ROLE\n")
    result = checked.check(tree)
    assert result.returncode != 0
    assert "too many defines -- adjust MAX_DEFINES" in result.stdout


# ---------------------------------------------------------------- the running SBC

GATE = own_stack_gate("the 5.x port's tests")  # our own SBC on loopback: malformed bytes may pass
LOG_WAIT = 10.0  # a log line the request just caused; generous for a loaded 2-core machine


@dataclass
class Stack:
    sbc: KazooSbc
    model: RunningModel

    @property
    def address(self) -> tuple[str, int]:
        return self.sbc.address


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitBroker]:
    if _STACK_SKIP is not None:
        pytest.skip(_STACK_SKIP)
    with RabbitBroker() as started:
        yield started


@pytest.fixture(scope="module")
def model() -> Iterator[RunningModel]:
    config = ModelConfig(
        release=KAZOO_5,
        sbc_port=0,
        media_port=0,
        esl_port=0,
        couch_port=0,
        media_host=MEDIA_IP,
        route_timeout=0.3,
    )
    running = start_model(config)
    try:
        yield running
    finally:
        running.stop()


def _start(broker: RabbitBroker, model: RunningModel, config_dir: Path | None = None) -> KazooSbc:
    """The ported 5.x Kamailio with the rows Kazoo's apps would deliver: the model's media role in the
    dispatcher table, the demo's listed carrier in the address table (written before the start)."""
    sbc = KazooSbc(
        KAZOO_5.name,
        config_dir=config_dir,
        media=dispatcher_rows([model.media], node=f"freeswitch@{MEDIA_IP}"),
        trusted=[AddressRow(LISTED, 32, tag="listed")],
        broker_url=broker.url,
        ready_timeout=60.0,
    )
    return sbc.start()


@pytest.fixture(scope="module")
def stack(broker: RabbitBroker, model: RunningModel) -> Iterator[Stack]:
    sbc = _start(broker, model)
    try:
        yield Stack(sbc, model)
    finally:
        sbc.stop()


@pytest.fixture(scope="module")
def filtering(
    tmp_path_factory: pytest.TempPathFactory, broker: RabbitBroker, model: RunningModel
) -> Iterator[Stack]:
    """The same with two optional roles switched on in an operator-style local.cfg: ANTIFLOOD and
    TRAFFIC_FILTER."""
    operator = tmp_path_factory.mktemp("operator") / "kamailio"
    copy_config(PRISTINE_5X, operator)
    local = operator / "local.cfg"
    local.write_text(set_roles(local.read_text(), on=frozenset({"antiflood", "traffic_filter"})))
    sbc = _start(broker, model, operator)
    try:
        assert {"antiflood", "traffic_filter"} <= sbc.roles
        yield Stack(sbc, model)
    finally:
        sbc.stop()


def _invite(
    stack: Stack, source: str, number: str, mutators: tuple[str, ...] = (), **spec: object
) -> Exchange:
    async def run() -> Exchange:
        ua = CarrierUA(source, gate=GATE)
        try:
            data = builder.build_invite(ua.spec(stack.address, ruri_user=number, **spec)).to_bytes()
            data = apply_mutators(data, list(mutators), seed=5)
            return await ua.invite(data, stack.address, timeout=8.0, dialed=number)
        finally:
            ua.close()

    return asyncio.run(run())


_PREFIX = r"(?P<level>[A-Z]+): \|{cid}\|(?P<file>\S+\.cfg):(?P<line>\d+) \((?P<route>[a-z0-9_:.-]+)\) {text}"


def _line(stack: Stack, call_id: str | None, text: str, since: int = 0) -> re.Match[str]:
    """The script's line of ``call_id`` with ``text``, after 5.x's prefix ``|<call-id>|file:line (route)``."""
    assert call_id is not None
    pattern = _PREFIX.format(cid=re.escape(call_id), text=text)
    found = re.search(pattern, stack.sbc.wait_for_log(pattern, LOG_WAIT, since))
    assert found is not None
    return found


@needs_stack
def test_it_answers_options(stack: Stack) -> None:
    async def run() -> Exchange:
        ua = CarrierUA(UNLISTED, gate=GATE)
        try:
            return await ua.options(stack.address, timeout=3.0)
        finally:
            ua.close()

    exchange = asyncio.run(run())
    assert exchange.final is not None
    assert (exchange.final.code, exchange.final.reason) == (200, "Rawr!!")


@needs_stack
def test_an_invite_from_a_trusted_source_is_relayed_to_the_dispatchers_media_server(stack: Stack) -> None:
    exchange = _invite(stack, LISTED, ROUTED)
    assert exchange.final_code == 200, exchange.to_json()
    first = exchange.provisional[0]
    assert (first.code, first.reason) == (100, "Attempting to connect your call")  # Kamailio's own 100
    assert 180 in exchange.provisional_codes
    classified = _line(stack, exchange.call_id, "request from trusted IP")
    assert (
        classified["file"].endswith("default.cfg") and classified["route"] == "log_request_classified_source"
    )
    media = f"{MEDIA_IP}:{stack.model.media[1]}"
    _line(stack, exchange.call_id, rf"pass - udp 127\.0\.0\.1:{stack.address[1]} -> {re.escape(media)}")
    # the media role received it from Kamailio, with the carrier's address in X-AUTH-IP
    fs_log = (stack.model.log_dir / "freeswitch.log").read_text()
    assert f'IP {LISTED} Approved by acl "trusted[carrier_listed]"' in fs_log


@needs_stack
def test_an_invite_from_an_untrusted_source_is_challenged_by_kamailio_itself(stack: Stack) -> None:
    exchange = _invite(stack, UNLISTED, ROUTED)
    assert exchange.final_code == 407
    assert exchange.final is not None and exchange.final.proxy_authenticate is not None
    found = _line(stack, exchange.call_id, rf"challenging INVITE from \S+ \(sip:\S+\) {UNLISTED}:\d+")
    assert found["file"].endswith("authorization.cfg") and found["route"] == "authorization"


@needs_stack
def test_a_trusted_source_written_later_counts_after_the_address_reload(stack: Stack) -> None:
    import sqlite3

    before = _invite(stack, LISTED_CIDR, ROUTED)
    assert before.final_code == 407  # not in the address table yet
    with sqlite3.connect(stack.sbc.db_path) as db:
        db.execute(
            "insert into address (grp, ip_addr, mask, port, tag) values (1, '127.0.1.0', 24, 0, 'cidr')"
        )
    assert "Reload OK" in stack.sbc.rpc("permissions.addressReload")
    after = _invite(stack, LISTED_CIDR, ROUTED)
    assert after.final_code == 200


@needs_stack
def test_a_604_from_the_media_server_reaches_the_carrier_as_486_unable_to_comply(stack: Stack) -> None:
    exchange = _invite(stack, LISTED, ABSENT)
    assert exchange.final is not None
    assert (exchange.final.code, exchange.final.reason) == (486, "Unable to Comply")
    found = _line(stack, exchange.call_id, "overriding reply code 604 with 486 Unable to Comply")
    assert found["route"] == "internal_fault"


@needs_stack
def test_a_686_from_the_media_server_reaches_the_carrier_as_486(stack: Stack) -> None:
    exchange = _invite(stack, LISTED, NO_CALLFLOW)
    assert exchange.final is not None
    assert (exchange.final.code, exchange.final.reason) == (486, "PICNIC")
    _line(stack, exchange.call_id, "sending 686 reply as 486 PICNIC")


def _send_raw(stack: Stack, mutators: list[str], source: str = LISTED) -> tuple[socket.socket, str, int]:
    """Send a mutated INVITE from ``source``; its socket (to watch for replies), Call-ID and port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    port = int(sock.getsockname()[1])
    ip, sip_port = stack.address
    spec = builder.InviteSpec(target_host=ip, target_port=sip_port, local_ip=source, local_port=port)
    request = builder.build_invite(spec)
    sock.sendto(apply_mutators(request.to_bytes(), mutators, seed=5), stack.address)
    return sock, request.call_id, port


def _no_reply(sock: socket.socket) -> None:
    sock.settimeout(SILENCE_WINDOW)
    with pytest.raises(TimeoutError):
        sock.recv(65535)


@needs_stack
def test_an_insane_invite_is_dropped_without_a_reply(stack: Stack) -> None:
    mark = stack.sbc.log_mark()
    sock, call_id, port = _send_raw(stack, ["cseq-mismatch"])
    try:
        found = _line(
            stack, call_id, rf"end - dropping insane message from {re.escape(LISTED)}:{port}$", mark
        )
        assert found["level"] == "WARNING" and found["file"].endswith("sanity.cfg")
        _no_reply(sock)
    finally:
        sock.close()


@needs_stack
def test_an_invite_without_cseq_is_dropped_by_the_core_before_the_script(stack: Stack) -> None:
    """Kamailio 5.6's core drops a request without CSeq (or Call-ID, From, To) before request_route runs:
    5.x's sanity check, and its "dropping insane message" line, never see it."""
    mark = stack.sbc.log_mark()
    sock, call_id, _ = _send_raw(stack, ["drop-header=CSeq"])
    try:
        stack.sbc.wait_for_log(
            r"ERROR: <core> \[core/receive\.c:\d+\]: receive_msg\(\): required headers not found in request$",
            LOG_WAIT,
            mark,
        )
        _no_reply(sock)
    finally:
        sock.close()
    assert not any(call_id in line for line in stack.sbc.log_lines(mark))  # it never reached the script


@needs_stack
def test_an_initial_invite_with_a_route_header_is_relayed_without_it(stack: Stack) -> None:
    """5.x drops the Route set of an initial request from outside (default.cfg PREPARE_INITIAL_REQUESTS,
    remove_hf("Route")) and relays it; 4.3's 403 No pre-loaded routes is not in 5.x."""
    exchange = _invite(stack, LISTED, ROUTED, ("route=<sip:127.0.0.1;lr>",))
    assert exchange.final_code == 200
    _line(stack, exchange.call_id, "call is not from internal source, recording route")


@needs_stack
def test_the_traffic_filter_role_drops_an_untrusted_invite_to_an_ip_domain(filtering: Stack) -> None:
    sock, call_id, _ = _send_raw(filtering, [], UNLISTED)  # the R-URI host is Kamailio's address
    try:
        found = _line(filtering, call_id, "end - dropping INVITE request with IP domain")
        assert found["file"].endswith("traffic-filter-role.cfg") and found["level"] == "WARNING"
        _no_reply(sock)
    finally:
        sock.close()


@needs_stack
def test_the_antiflood_role_drops_a_flood_from_one_source(filtering: Stack) -> None:
    """Pike through ANTIFLOOD_RATE_LIMIT, which the port calls where the fork's routes(ANTIFLOOD) was:
    more than 50 requests in 2 s from one untrusted source are dropped."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((UNLISTED, 0))
        port = int(sock.getsockname()[1])
        mark = filtering.sbc.log_mark()
        ip, sip_port = filtering.address
        for n in range(80):  # a burst: pike counts requests per source address
            spec = builder.InviteSpec(
                target_host=ip,
                target_port=sip_port,
                local_ip=UNLISTED,
                local_port=port,
                ruri_host="kazoo.example.com",  # a domain, so the traffic filter lets it through
                seed=1000 + n,
            )
            sock.sendto(builder.build_invite(spec).to_bytes(), filtering.address)
        filtering.sbc.wait_for_log(
            rf"WARNING: \|[^|]+\|\S*antiflood-role\.cfg:\d+ \(antiflood_rate_limit\) end - dropping request "
            rf"from \S+ due to rate of requests with source {re.escape(UNLISTED)}:{port}$",
            LOG_WAIT,
            mark,
        )
    finally:
        sock.close()
    assert filtering.sbc.pid is not None and Path(f"/proc/{filtering.sbc.pid}").exists()


@needs_stack
def test_kamailio_is_still_running_after_the_calls(stack: Stack) -> None:
    assert stack.sbc.pid is not None and Path(f"/proc/{stack.sbc.pid}").exists(), stack.sbc.log_lines()[-30:]
