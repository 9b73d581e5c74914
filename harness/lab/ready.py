"""Is a SIP element up yet? Send it OPTIONS over UDP until it answers, it goes away, or time runs out.

For elements the harness starts itself (the lab Kamailio, the docker stack's containers): a plain
blocking socket, probed again every ``probe_wait`` seconds, since nothing else says when it is ready.
Standard library only, like the rest of harness/lab: the Kamailio image carries harness/lab alone.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from typing import Literal

Address = tuple[str, int]
Readiness = Literal["answered", "exited", "timeout"]


def options_probe(ip: str, port: int, local_port: int, *, who: str, ruri_host: str | None = None) -> bytes:
    """One OPTIONS from ``ip:local_port`` to ``ip:port``; ``who`` names the prober in From and Call-ID.
    ``ruri_host`` puts a host name in the Request-URI instead of the IP (an SBC whose traffic filter
    drops an untrusted request to an IP domain still answers it)."""
    tag = uuid.uuid4().hex
    return (
        f"OPTIONS sip:{ruri_host or ip}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{local_port};branch=z9hG4bK{tag[:16]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{who}@{ip}>;tag={tag[:8]}\r\n"
        f"To: <sip:{ip}:{port}>\r\n"
        f"Call-ID: {who}-{tag}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def wait_options_answer(
    address: Address,
    deadline: float,
    *,
    who: str,
    exited: Callable[[], bool],
    want: bytes = b"SIP/2.0 ",
    probe_wait: float = 0.05,
    ruri_host: str | None = None,
) -> Readiness:
    """Probe ``address`` until a reply starting with ``want`` comes (``answered``), ``exited()`` says the
    element is gone (``exited``) or ``deadline`` (time.monotonic()) passes (``timeout``)."""
    ip, port = address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        probe = options_probe(ip, port, int(sock.getsockname()[1]), who=who, ruri_host=ruri_host)
        while True:
            if exited():
                return "exited"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            sock.sendto(probe, address)
            sock.settimeout(min(probe_wait, remaining))
            try:
                reply = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if reply.startswith(want):
                return "answered"
