"""Kazoo's own SIP_TRACE_ROLE pointed at the harness: the local.cfg values that make the configuration send
every call it traces as HEP3 to the harness's receiver (docs/hep.md, "Pointing a real stack at the
harness").

The role (4.3 and 5.x ``sip_trace-role.cfg``) loads siptrace with ``hep_mode_on 1``, ``hep_version 3``,
``duplicate_uri SIP_TRACE_URI`` and ``trace_on KZ_TRACE`` — 0 unless local.cfg says otherwise, so without
``KZ_TRACE 1`` nothing is traced. It traces from the request route (``route(SIP_TRACE)``), after the
sanity, ACL and OPTIONS handling: what those drop is never captured, so this capture is not complete.
"""

from __future__ import annotations

Address = tuple[str, int]


def sip_trace_defines(collector: Address, capture_id: int = 1) -> dict[str, str]:
    """``#!define`` names and values for local.cfg's site block: the role on, tracing on, to ``collector``
    (a loopback address: the harness's receiver)."""
    host, port = collector
    if not host.startswith("127."):
        raise ValueError(f"the HEP collector must be a loopback address, got {host}")
    return {
        "SIP_TRACE_ROLE": "",
        "SIP_TRACE_URI": f'"sip:{host}:{port}"',  # pasted into modparam("siptrace", "duplicate_uri", ...)
        "HEP_CAPTURE_ID": str(capture_id),
        "KZ_TRACE": "1",
    }
