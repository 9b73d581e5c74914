"""Shared by the probe exporter tests: reading an exposition, stacks that are down, target files."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "scenarios"
ROUTED = "a_routed_call_rings_answers_and_hangs_up[udp]"
ACL = "unlisted_carrier_is_challenged"
HTTP_TIMEOUT = 30.0

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    """Every sample of an exposition, by (name, labels)."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(series: Series, name: str, **labels: str) -> float | None:
    return series.get((name, frozenset(labels.items())))


def names(series: Series) -> set[str]:
    return {name for name, _ in series}


def get(url: str, path: str, **params: str) -> requests.Response:
    return requests.get(url + path, params=params, timeout=HTTP_TIMEOUT)


def scrape(url: str, scenario: str, **params: str) -> Series:
    response = get(url, "/probe", scenario=scenario, **params)
    assert response.status_code == 200, response.text
    return parse(response.text)


def dead_port() -> int:
    """A loopback port nothing listens on (UDP: ICMP port unreachable; TCP: refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


@contextmanager
def silent_sbc() -> Iterator[int]:
    """A loopback UDP port that takes every datagram and never answers (a host that swallows them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        yield int(udp.getsockname()[1])


def stack_file(directory: Path, port: int, *, name: str = "down") -> Path:
    """A target file for an SBC at ``port`` on loopback with the demo's roles and empty log files."""
    logs = ""
    for source in ("freeswitch", "kamailio", "kazoo"):
        path = directory / f"{name}-{source}.log"
        path.touch()
        logs += f'[[logs]]\nname = "{source}"\nkind = "file"\npath = "{path}"\n\n'
    text = f"""name = "{name}"
[[sbc]]
name = "kam1"
host = "127.0.0.1"
port = {port}

[carriers]
listed = "127.0.0.10"
unlisted = "127.0.0.66"

[numbers]
routed = "+14155550100"

{logs}
[safety]
rate_limit = 0
"""
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path
