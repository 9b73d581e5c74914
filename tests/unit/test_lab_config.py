"""The lab Kamailio's configuration is filled correctly for each release (no Kamailio needed)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from harness.kazoo.release import KAZOO_4_3, RELEASE_NAMES, release
from harness.lab.kamailio import (
    STYLE_SWITCHES,
    LabKamailio,
    LabStyle,
    dispatcher_list_text,
    free_port,
    free_ports,
    kamailio_available,
    parse_trusted,
    render_config,
    style_flags,
    trusted_flags,
    trusted_route,
)


def _render(release_name: str = "kazoo-4.3", sanity_drops_request: bool = True) -> str:
    return render_config(
        listen_ip="127.0.0.5",
        port=5099,
        dispatcher_list=Path("/tmp/x/dispatcher.list"),
        module_dir=Path("/usr/lib/kamailio/modules"),
        style=release(release_name),  # a KazooRelease is the lab's style: its fields carry the knobs
        sanity_drops_request=sanity_drops_request,
    )


@pytest.mark.parametrize("release_name", RELEASE_NAMES)
def test_every_placeholder_filled(release_name: str) -> None:
    text = _render(release_name)
    assert "{{" not in text and "}}" not in text
    assert "listen=udp:127.0.0.5:5099" in text and "listen=tcp:127.0.0.5:5099" in text
    assert 'modparam("dispatcher", "list_file", "/tmp/x/dispatcher.list")' in text
    assert "tcp_rd_buf_size=80000" in text


def test_kazoo43_lines_carry_callid_and_area() -> None:
    text = _render("kazoo-4.3")
    assert '"$ci|end|dropping insane message from $si:$sp\\n"' in text
    assert "#!define REWRITE_604" not in text and '"xlog", "prefix"' not in text
    assert "#!define SBC_RELAYS_MEDIA_407" in text and "#!define SBC_CHALLENGES_UNTRUSTED" not in text


def test_kazoo5_lines_use_xlogs_prefix_and_the_5x_switches() -> None:
    text = _render("kazoo-5")
    assert '"end - dropping insane message from $si:$sp\\n"' in text
    assert 'modparam("xlog", "prefix", "|$ci|$cfg(file):$cfg(line) ($(cfg(route){s.tolower})) ")' in text
    defines = ("REWRITE_604", "SBC_CHALLENGES_UNTRUSTED", "SBC_REMOVES_INITIAL_ROUTE",
               "SBC_ACCEPTS_TCP_WITHOUT_CL", "SBC_X_AUTH_FOR_AUTHORIZED_ONLY", "PREFIXED_LOG")  # fmt: skip
    for define in defines:
        assert f"#!define {define}\n" in text, define
    assert "#!define SBC_RELAYS_MEDIA_407" not in text


def test_trusted_sources_become_address_checks() -> None:
    text = render_config(
        listen_ip="127.0.0.5", port=5099, dispatcher_list=Path("/x"), module_dir=Path("/m"),
        style=release("kazoo-5"), sanity_drops_request=True,
        trusted=[("127.0.0.10", 32, 0), ("127.0.0.20", 32, 5070)],
    )  # fmt: skip
    assert "if (src_ip == 127.0.0.10/32) { setflag(FLAG_TRUSTED_SOURCE); return; }" in text
    with_port = "if (src_ip == 127.0.0.20/32 && src_port == 5070) { setflag(FLAG_TRUSTED_SOURCE); return; }"
    assert with_port in text
    with pytest.raises(ValueError, match="loopback"):
        trusted_route([("10.0.0.1", 32, 0)])


def test_the_image_flags_carry_every_switch_both_ways() -> None:
    for name in RELEASE_NAMES:
        flags = style_flags(release(name))
        assert flags[:2] == ["--log-style", release(name).kamailio_log_style]
        assert len(flags) == 2 + len(STYLE_SWITCHES)
    assert trusted_flags([("127.0.0.20", 32, 5070)]) == ["--trusted", "127.0.0.20/32:5070"]
    assert parse_trusted("127.0.1.0/24:0") == ("127.0.1.0", 24, 0)
    with pytest.raises(ValueError):
        parse_trusted("10.0.0.1/32:0")


@pytest.mark.parametrize(("drops", "noreply"), [(True, "1"), (False, "0")])
def test_sanity_flag(drops: bool, noreply: str) -> None:
    text = _render(sanity_drops_request=drops)
    assert ("#!define SANITY_DROPS_REQUEST" in text) is drops
    # the template picks the noreply value by that define
    assert f'modparam("sanity", "noreply", {noreply})' in text


def test_unknown_log_style_refused() -> None:
    with pytest.raises(ValueError, match="unknown log style"):
        LabStyle(kamailio_log_style="slash")


def test_dispatcher_list_holds_the_media_role_probed() -> None:
    assert dispatcher_list_text(("127.0.0.1", 11000)).splitlines()[1:] == ["1 sip:127.0.0.1:11000 8 0"]
    assert dispatcher_list_text(None).splitlines()[1:] == []  # no media server: 480 All servers busy


def test_only_loopback_addresses_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LabKamailio(listen_ip="10.0.0.1", style=KAZOO_4_3)
    with pytest.raises(ValueError, match="loopback"):
        LabKamailio(media=("192.168.1.2", 11000), style=KAZOO_4_3)


def test_free_port_is_bindable_for_udp_and_tcp() -> None:
    port = free_port("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", port))
        tcp.bind(("127.0.0.1", port))


def test_free_ports_are_distinct_and_each_bindable_for_udp_and_tcp() -> None:
    ports = free_ports("127.0.0.1", 6)
    assert len(set(ports)) == 6
    with contextlib.ExitStack() as held:
        for port in ports:
            held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)).bind(("127.0.0.1", port))
            held.enter_context(socket.socket()).bind(("127.0.0.1", port))


def test_available_is_none_or_a_reason() -> None:
    reason = kamailio_available()
    assert reason is None or ("kamailio" in reason)
