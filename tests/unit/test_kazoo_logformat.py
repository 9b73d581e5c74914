"""Log line writers and the parser: round trips and real-looking samples of each format."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from harness.kazoo.logformat import (
    fs_line,
    kamailio_line,
    kazoo_line,
    level_number,
    normalize_level,
    parse_line,
)
from harness.model.logbus import LogBus, LogRecord

WHEN = datetime(2026, 11, 26, 4, 0, 1, 123456).timestamp()
CID = "a1b2c3d4-0001@127.0.0.10"


def test_fs_line_shape_and_round_trip() -> None:
    text = fs_line("WARNING", "sofia_reg.c", 1780, "SIP auth challenge (INVITE)", when=WHEN)
    assert text == "2026-11-26 04:00:01.123456 [WARNING] sofia_reg.c:1780 SIP auth challenge (INVITE)"
    parsed = parse_line(text)
    assert (parsed.format, parsed.level, parsed.file, parsed.line) == (
        "freeswitch",
        "WARNING",
        "sofia_reg.c",
        1780,
    )
    assert parsed.message == "SIP auth challenge (INVITE)"
    assert parsed.timestamp == pytest.approx(WHEN)


def test_fs_line_with_uuid_prefix_and_idle() -> None:
    text = fs_line(3, "sofia.c", 7, "boom", call_id=CID, when=WHEN, idle=97.5, uuid_prefix=True)
    odd = parse_line(fs_line(3, "sofia.c", 7, "boom", call_id="%2Fodd-[id]", when=WHEN, uuid_prefix=True))
    assert (odd.format, odd.call_id) == ("freeswitch", "%2Fodd-[id]")
    assert text == f"{CID} 2026-11-26 04:00:01.123456 97.50% [ERR] sofia.c:7 boom"
    parsed = parse_line(text)
    assert (parsed.call_id, parsed.level, parsed.message) == (CID, "ERROR", "boom")


def test_fs_event_socket_body_with_idle_only() -> None:
    parsed = parse_line(
        "2026-11-26 04:00:01.000001 99.00% [NOTICE] switch_channel.c:1142 New Channel x [y]\n"
    )
    assert (parsed.format, parsed.level, parsed.call_id, parsed.message) == (
        "freeswitch",
        "NOTICE",
        None,
        "New Channel x [y]",
    )


def test_kamailio_43_and_5_bare() -> None:
    assert kamailio_line("pipe", "WARNING", "dropping insane message from 127.0.0.66:5060", CID) == (
        f"{CID}|end|dropping insane message from 127.0.0.66:5060"
    )
    where = ("sanity.cfg", 41, "sanity_check")
    assert kamailio_line("prefixed", "WARNING", "end - dropping insane message", CID, where=where) == (
        f"|{CID}|sanity.cfg:41 (sanity_check) end - dropping insane message"
    )
    with pytest.raises(ValueError, match="where"):
        kamailio_line("prefixed", "WARNING", "end - no location", CID)
    assert kamailio_line("pipe", "WARNING", "second To header not null - dropping message") == (
        "second To header not null - dropping message"
    )
    p43 = parse_line(f"{CID}|auth|challenging INVITE")
    assert (p43.format, p43.call_id, p43.message) == ("kamailio", CID, "challenging INVITE")
    no_cid = parse_line("<null>|end|dropping insane message from 127.0.0.66:5060")
    assert (no_cid.format, no_cid.call_id) == ("kamailio", None)
    p5 = parse_line(f"|{CID}|sanity.cfg:41 (sanity_check) end - dropping insane message from 127.0.0.66:5060")
    assert (p5.format, p5.call_id, p5.file, p5.line, p5.message) == (
        "kamailio",
        CID,
        "sanity.cfg",
        41,
        "end - dropping insane message from 127.0.0.66:5060",
    )
    bare = parse_line("end - dropping insane message from 127.0.0.66:5060")  # the form before the prefix
    assert (bare.format, bare.call_id, bare.message) == (
        "kamailio",
        None,
        "dropping insane message from 127.0.0.66:5060",
    )


def test_kamailio_with_stderr_and_syslog_prefix() -> None:
    text = kamailio_line("pipe", "WARNING", "too much hops", CID, pid=4242)
    assert text == f" 0(4242) WARNING: <script>: {CID}|end|too much hops"
    parsed = parse_line(text)
    assert (parsed.format, parsed.level, parsed.file, parsed.call_id, parsed.message) == (
        "kamailio",
        "WARNING",
        "script",
        CID,
        "too much hops",
    )
    syslog = parse_line(
        "Nov 26 04:00:00 sbc kamailio[311]: INFO: <script>: end - dropping message with user-agent x"
    )
    assert (syslog.level, syslog.message) == ("INFO", "dropping message with user-agent x")
    # 5.x as Kamailio -DD -E writes it: no <script>, the xlog prefix; a timer's faked message has Call-ID 123
    real = parse_line(
        " 1(26382) INFO: |75a3adb3254a9493@127.0.0.10|default.cfg:323 (log_request_classified_source) "
        "request from trusted IP"
    )
    assert (real.level, real.call_id, real.file, real.line) == (
        "INFO",
        "75a3adb3254a9493@127.0.0.10",
        "default.cfg",
        323,
    )
    assert real.message == "request from trusted IP"
    timer = parse_line(" 0(5870) INFO: |123|nodes-role.cfg:287 (kz_amqp_binding_nodes) proxy tags []")
    assert (timer.format, timer.call_id, timer.file) == ("kamailio", "123", "nodes-role.cfg")
    written = kamailio_line("prefixed", "INFO", "x", CID, pid=9, where=("default.cfg", 1, "r"))
    assert written == f" 0(9) INFO: |{CID}|default.cfg:1 (r) x"
    core = parse_line(
        " 0(311) ERROR: <core> [core/receive.c:255]: receive_msg(): core parsing of SIP message failed "
        "(127.0.0.66:5060/1)"
    )
    assert (core.format, core.level, core.file) == ("kamailio", "ERROR", "core")
    assert core.message.endswith("core parsing of SIP message failed (127.0.0.66:5060/1)")


def test_kazoo_lager_line() -> None:
    text = kazoo_line("info", "stepswitch_inbound", 80, "unable to determine account", call_id=CID, when=WHEN)
    assert (
        text == f"2026-11-26 04:00:01.123 [info] |{CID}|stepswitch_inbound:80 (<0.1000.0>) "
        "unable to determine account"
    )
    parsed = parse_line(text)
    assert (parsed.format, parsed.level, parsed.file, parsed.line, parsed.call_id) == (
        "kazoo",
        "INFO",
        "stepswitch_inbound",
        80,
        CID,
    )
    assert parsed.message == "unable to determine account"
    assert parsed.timestamp == pytest.approx(WHEN, abs=0.001)  # lager keeps milliseconds
    syslog = parse_line(
        f"Nov 26 04:00:01 kz1 2600hz[4242]: |{CID}|stepswitch_inbound:80 (<0.28779.145>) unable to determine"
    )
    assert (syslog.format, syslog.level, syslog.call_id, syslog.file, syslog.message) == (
        "kazoo",
        None,
        CID,
        "stepswitch_inbound",
        "unable to determine",
    )
    no_cid = parse_line(kazoo_line("critical", "ecallmgr_fs_acls", 12, "x"))
    assert (no_cid.call_id, no_cid.level) == (None, "CRIT")
    assert "[critical]" in kazoo_line("CRIT", "m", 1, "x")


def test_unknown_text_is_raw() -> None:
    parsed = parse_line("something else entirely\n")
    assert (parsed.format, parsed.message, parsed.level, parsed.call_id) == (
        "raw",
        "something else entirely",
        None,
        None,
    )


def test_levels() -> None:
    assert normalize_level("err") == "ERROR"
    assert normalize_level("7") == "DEBUG"
    assert level_number("WARNING") == 4 == level_number("warn")
    with pytest.raises(ValueError):
        normalize_level("loud")
    with pytest.raises(ValueError):
        kamailio_line("slash", "INFO", "x")  # type: ignore[arg-type]


def test_logbus_writes_files_and_publishes(tmp_path: Path) -> None:
    bus = LogBus(tmp_path, "prefixed")
    seen: list[LogRecord] = []
    unsubscribe = bus.subscribe(seen.append)
    fs = bus.freeswitch(
        "NOTICE", "switch_channel.c", 1142, "New Channel", CID, func="switch_channel_set_name"
    )
    kam = bus.kamailio(
        "WARNING",
        "end - dropping insane message from 127.0.0.66:5060",
        CID,
        where=("sanity.cfg", 41, "sanity_check"),
    )
    kz = bus.kazoo("stepswitch", "stepswitch_inbound", 80, "info", "unable to determine account", CID)
    unsubscribe()
    bus.kazoo("stepswitch", "stepswitch_inbound", 81, "info", "after unsubscribe")
    assert seen == [fs, kam, kz]
    # Lines are in the files without closing the bus: flushed at once for followers.
    fs_text = (tmp_path / "freeswitch.log").read_text()
    assert fs_text == fs.text + "\n" and fs_text.startswith(CID + " ")
    kam_lines = (tmp_path / "kamailio.log").read_text().splitlines()
    assert kam_lines == [kam.text] and kam.text.endswith(
        f"|{CID}|sanity.cfg:41 (sanity_check) end - dropping insane message from 127.0.0.66:5060"
    )
    assert (kam.file, kam.line) == ("sanity.cfg", 41)
    assert len((tmp_path / "kazoo.log").read_text().splitlines()) == 2
    assert parse_line(kz.text).call_id == CID
    assert (fs.func, fs.level, kam.level, kz.app) == (
        "switch_channel_set_name",
        "NOTICE",
        "WARNING",
        "stepswitch",
    )
    bus.close()


def test_logbus_survives_a_broken_subscriber(tmp_path: Path) -> None:
    bus = LogBus(tmp_path, "pipe")
    seen: list[str] = []

    def broken(record: LogRecord) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(broken)
    bus.subscribe(lambda r: seen.append(r.message))
    bus.kamailio("INFO", "still delivered")
    assert seen == ["still delivered"]
    bus.close()
