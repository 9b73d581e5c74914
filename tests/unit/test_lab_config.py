"""The lab Kamailio's configuration is filled correctly for each release (no Kamailio needed)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from harness.kazoo.release import KAZOO_4_3, RELEASE_NAMES, release
from harness.lab.kamailio import (
    LabKamailio,
    LabStyle,
    dispatcher_list_text,
    free_port,
    free_ports,
    kamailio_available,
    render_config,
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
    assert "#!define REWRITE_604" not in text and "log_prefix" not in text


def test_kazoo5_lines_use_area_dash_and_log_prefix() -> None:
    text = _render("kazoo-5")
    assert '"end - dropping insane message from $si:$sp\\n"' in text
    assert "#!define REWRITE_604" in text
    assert 'log_prefix="{$mt $hdr(CSeq) $ci} "' in text


@pytest.mark.parametrize(("drops", "noreply"), [(True, "1"), (False, "0")])
def test_sanity_flag(drops: bool, noreply: str) -> None:
    text = _render(sanity_drops_request=drops)
    assert ("#!define SANITY_DROPS_REQUEST" in text) is drops
    # the template picks the noreply value by that define
    assert f'modparam("sanity", "noreply", {noreply})' in text


def test_unknown_log_style_refused() -> None:
    with pytest.raises(ValueError, match="unknown log style"):
        LabStyle(kamailio_log_style="slash", sbc_rewrites_604=False)


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
