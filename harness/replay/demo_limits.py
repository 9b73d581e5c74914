"""What a target running on the harness's demo data cannot judge about a customer's capture.

A replay with no target runs against an embedded model loaded with the demo data set (the target says
so: ``Target.demo_data``). The demo knows its own carriers and numbers only (the target's carrier and
number roles): a customer's number is "unknown" there and a customer's carrier is not in its ACLs,
whatever the customer's stack would do. Those two causes, named on the demo for a number or an address
the demo never heard of, say nothing about the customer's stack; the replay then says so plainly, and
what to pass instead. A number format problem or a malformed INVITE does not depend on the data and
stays judged.
"""

from __future__ import annotations

from harness.kazoo.causes import Cause
from harness.kazoo.numbers import normalize
from harness.targets.target import Target

DATA_DEPENDENT = (Cause.NUMBER_MAPPING, Cause.ACL)
WHAT_TO_PASS = (
    "replay with --data DIR (the CouchDB data of the stack the capture came from, in the folder shape "
    "`kazoo-harness model --data` reads: system_config/ecallmgr.json, numbers%2F%2B1415/..., the account "
    "databases) or --target FILE (that stack itself)"
)


def demo_cannot_judge(cause: str, dialed: str | None, source_ip: str, target: Target) -> str | None:
    """Why ``cause``, named by ``target`` for this call, means nothing for the capture, or None when it
    does (the target is not on the demo data, the cause does not depend on data, or the number or
    address is one of the demo's own)."""
    if not target.demo_data or cause not in DATA_DEPENDENT:
        return None
    if cause == Cause.NUMBER_MAPPING:
        number = normalize(dialed) if dialed else None
        if number in set(target.numbers.values()):
            return None  # one of the demo's own numbers (its absent and unrouted ones included)
        return (
            f"the embedded demo data has no number {number or '(none dialed)'}, so it answers as for an "
            f"unknown number whatever the capture's stack would do"
        )
    if source_ip in {ip for ip, _port in target.carriers.values()}:
        return None
    return (
        f"the embedded demo's ACLs list only the demo carriers, not {source_ip}, so it rejects the call "
        f"whatever the capture's stack would do"
    )


__all__ = ["DATA_DEPENDENT", "WHAT_TO_PASS", "demo_cannot_judge"]
