"""Kazoo's SIP_TRACE_ROLE pointed at the harness (harness.kazoo_sbc.trace): the site block of the release's
own local.cfg switches the role on, sets SIP_TRACE_URI (quoted: sip_trace-role.cfg pastes it into a
modparam), HEP_CAPTURE_ID and KZ_TRACE 1, and comments out an operator's own values for those names;
the role file reads exactly these names."""

from __future__ import annotations

import re

import pytest

from harness.kazoo_sbc.localcfg import SiteValues, roles_of, with_site_values
from harness.kazoo_sbc.releases import sbc_release
from harness.kazoo_sbc.trace import sip_trace_defines

PRISTINE = sbc_release("kazoo-4.3").pristine


def test_the_defines_turn_the_role_and_tracing_on_towards_the_collector() -> None:
    assert sip_trace_defines(("127.0.0.1", 45060), capture_id=7) == {
        "SIP_TRACE_ROLE": "",
        "SIP_TRACE_URI": '"sip:127.0.0.1:45060"',
        "HEP_CAPTURE_ID": "7",
        "KZ_TRACE": "1",
    }
    with pytest.raises(ValueError, match="loopback"):
        sip_trace_defines(("10.0.0.5", 9060))


def test_the_role_file_reads_these_names_and_traces_nothing_without_kz_trace() -> None:
    role = (PRISTINE / "sip_trace-role.cfg").read_text(encoding="utf-8")
    for name in ("SIP_TRACE_URI", "HEP_CAPTURE_ID", "KZ_TRACE"):
        assert re.search(rf"^#!trydef {name} ", role, re.M), name  # local.cfg's #!define wins
    assert re.search(r"^#!trydef KZ_TRACE 0$", role, re.M)
    assert 'modparam("siptrace", "trace_on", KZ_TRACE)' in role


def test_the_site_block_of_an_operators_local_cfg_switches_it_on() -> None:
    operator = (PRISTINE / "local.cfg").read_text(encoding="utf-8")
    operator += '#!define SIP_TRACE_URI "sip:10.1.2.3:9060"\n'  # their Homer: replaced, kept as a comment
    written = with_site_values(operator, SiteValues({}, sip_trace_defines(("127.0.0.1", 45060)), ()))
    assert "\n#!define SIP_TRACE_ROLE\n" in written  # no trailing blank after a valueless define
    assert '\n#!define SIP_TRACE_URI "sip:127.0.0.1:45060"\n' in written
    assert "\n#!define KZ_TRACE 1\n" in written and "\n#!define HEP_CAPTURE_ID 1\n" in written
    assert '(site value set above): #!define SIP_TRACE_URI "sip:10.1.2.3:9060"' in written
    assert "sip_trace" in roles_of(written) and "sip_trace" not in roles_of(operator)
