"""What the embedded model's demo data cannot judge about a customer's capture.

A replay with no target runs against a model loaded with the demo data set (harness/model/demo). The
demo knows its own carriers and numbers only: a customer's number is "unknown" there and a customer's
carrier is not in its ACLs, whatever the customer's stack would do. Those two causes, named on the demo
for a number or an address the demo never heard of, say nothing about the customer's stack; the replay
then says so plainly, and what to pass instead. A number format problem or a malformed INVITE does not
depend on the data and stays judged.
"""

from __future__ import annotations

from harness.kazoo.numbers import normalize
from harness.model.demo import demo_roles

DATA_DEPENDENT = ("number_mapping", "acl")
WHAT_TO_PASS = (
    "replay with --data DIR (the CouchDB data of the stack the capture came from, in the folder shape "
    "`kazoo-harness model --data` reads: system_config/ecallmgr.json, numbers%2F%2B1415/..., the account "
    "databases) or --target FILE (that stack itself)"
)


def demo_cannot_judge(cause: str, dialed: str | None, source_ip: str) -> str | None:
    """Why a cause named on the demo data means nothing for this capture, or None when it does."""
    if cause not in DATA_DEPENDENT:
        return None
    roles = demo_roles()
    if cause == "number_mapping":
        known = {str(n) for n in roles.get("numbers", {}).values()}
        number = normalize(dialed) if dialed else None
        if number in known:
            return None  # one of the demo's own numbers (its absent and unrouted ones included)
        return (
            f"the embedded demo data has no number {number or '(none dialed)'}, so it answers as for an "
            f"unknown number whatever the capture's stack would do"
        )
    carriers = {str(c["ip"]) for c in roles.get("carriers", {}).values()}
    if source_ip in carriers:
        return None
    return (
        f"the embedded demo's ACLs list only the demo carriers, not {source_ip}, so it rejects the call "
        f"whatever the capture's stack would do"
    )


__all__ = ["DATA_DEPENDENT", "WHAT_TO_PASS", "demo_cannot_judge"]
