"""The four causes of the operators' troubleshooting guide, in one spelling.

Scenarios are grouped by them (plus `call_flow` for healthy flows and the symptoms callers report),
expectation profile outcomes name one (or `none` for a healthy outcome), and diagnose and replay answer
with one (or `none` / `unknown`).
"""

from __future__ import annotations

from enum import StrEnum


class Cause(StrEnum):
    ACL = "acl"  # 1. the carrier's IP is not in the allowed list (ecallmgr ACLs)
    NUMBER_FORMAT = "number_format"  # 2. the dialed number is not in a form Kazoo understands
    NUMBER_MAPPING = "number_mapping"  # 3. the number is not mapped in the numbers database
    MALFORMED = "malformed"  # 4. the INVITE is malformed, oversized or asks for unsupported features


GUIDE: dict[Cause, str] = {
    Cause.ACL: "seed cause 1: the carrier's IP is not in the allowed list (ecallmgr ACLs)",
    Cause.NUMBER_FORMAT: "seed cause 2: the dialed number is not in a form Kazoo understands",
    Cause.NUMBER_MAPPING: "seed cause 3: the number is not mapped in the numbers database",
    Cause.MALFORMED: "seed cause 4: the INVITE is malformed, oversized or asks for unsupported features",
}
CALL_FLOW = "call_flow"  # scenarios of healthy call flows and of the symptoms callers report
CALL_FLOW_TITLE = "healthy call flows and the symptoms callers report"
# A scenario's `cause:`, in the order reports list them
CATEGORIES: tuple[str, ...] = (*(c.value for c in Cause), CALL_FLOW)
NONE = "none"  # a healthy outcome: no cause to name
UNKNOWN = "unknown"  # the evidence names no cause
# What diagnose and replay answer, and what an outcome of a profile names (unknown: a stack fault that
# is none of the guide's causes, such as no media server)
VERDICTS: tuple[str, ...] = (*(c.value for c in Cause), NONE, UNKNOWN)
