"""The troubleshooting guide, automated: "calls from carrier X to number Y fail — which cause is it?"

Steps, in the order a call meets them, each named after the cause it checks (harness.kazoo.causes):
``acl`` (system_config/ecallmgr, cross-checked with the live lists over the event socket),
``number_format`` (stepswitch field + number_manager converters), ``number_mapping`` (numbers database,
state, account, callflow), and optionally ``invite`` (a test INVITE and the log lines it causes, judged
by the expectation profile). Each step records its evidence; the verdict is the first step that found
a problem. JSON shape: docs/diagnose.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.kazoo import numbers as kn
from harness.kazoo.acls import AUTHORITATIVE, TRUSTED, AclLists, acl_entries, node_acls, offnet_resources
from harness.kazoo.causes import NONE, UNKNOWN, Cause

Status = Literal["ok", "problem", "warning", "skipped", "error"]
INVITE_STEP = "invite"
# 2: the malformed cause has the one spelling of harness.kazoo.causes (version 1 had its own)
SCHEMA_VERSION = 2


@dataclass
class Step:
    name: str  # a cause (the step that checks it), or "invite"
    status: Status
    summary: str
    evidence: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    fix: str | None = None
    cause: str | None = None  # set on problems: the cause this step names


@dataclass
class Diagnosis:
    number: str
    carrier_ip: str
    carrier_port: int | None
    target: str
    steps: list[Step]
    cause: str = UNKNOWN
    verdict: str = ""
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "cause": self.cause,
            "verdict": self.verdict,
            "fix": self.fix,
            "number": self.number,
            "carrier": {"ip": self.carrier_ip, "port": self.carrier_port},
            "target": self.target,
            "steps": {s.name: {k: v for k, v in asdict(s).items() if k != "name"} for s in self.steps},
        }


LiveAcl = Callable[[str, str], str]  # (ip, list name) -> FreeSWITCH's "true"/"false"; raises when it cannot


def _ecallmgr_node(doc: Mapping[str, Any], node: str | None) -> tuple[str, str]:
    """(section used, why): the node section when it has ``acls``, else ``default``."""
    if node and isinstance(doc.get(node), Mapping) and "acls" in doc[node]:
        return node, f"node section {node!r} has its own acls, which replace the default section's"
    others = sorted(k for k in doc if k.startswith("ecallmgr@"))
    if node is None and others:
        return "default", f"no node named; default section used (node sections present: {', '.join(others)})"
    return "default", "default section (no node section with acls)"


def acl_step(reader: kn.DocReader, ip: str, port: int | None, node: str | None, live: LiveAcl | None) -> Step:
    doc = reader.get(kn.SYSTEM_CONFIG_DB, "ecallmgr")
    if doc is None:
        return Step(
            Cause.ACL,
            "problem",
            "system_config/ecallmgr does not exist: no carrier is trusted",
            ["GET system_config/ecallmgr -> not found"],
            fix="create the ACL: sup -necallmgr ecallmgr_maintenance allow_carrier NAME IP, then reload_acls",
            cause=Cause.ACL,
        )
    section, why = _ecallmgr_node(doc, node)
    skipped: list[str] = []
    entries = acl_entries(doc, section, offnet_resources(reader), skipped)
    lists = AclLists.build(entries, skipped)
    trusted = lists.check(TRUSTED, ip, port)
    deciding = lists.decide(TRUSTED, ip, port)
    authoritative = lists.check(AUTHORITATIVE, ip, port)
    evidence = [
        f"system_config/ecallmgr: {why}",
        f"{len(entries)} entries in effect ({len(node_acls(doc, section))} from the document)",
    ]
    data: dict[str, Any] = {
        "section": section,
        "trusted": trusted is not None,
        "trusted_entry": trusted.entry_name if trusted else None,
        "authoritative": authoritative is not None,
        "authoritative_entry": authoritative.entry_name if authoritative else None,
        "live_trusted": None,
    }
    if trusted:
        evidence.append(f"{ip} is trusted by entry {trusted.entry_name!r} ({trusted.cidr}, {trusted.source})")
    elif deciding is not None:
        evidence.append(f"{ip} is denied by entry {deciding.name!r} ({deciding.cidr}, type {deciding.type})")
    else:
        same_ip = [e for e in lists.lists.get(TRUSTED, []) if _contains(e.cidr, ip)]
        if same_ip and port is not None:
            evidence.append(
                f"{ip} matches {same_ip[0].name!r} but only on ports {list(same_ip[0].ports)}, not {port}"
            )
        else:
            evidence.append(f"{ip} is in no trusted entry (the list denies by default)")
    if authoritative:
        evidence.append(
            f"{ip} is in authoritative by entry {authoritative.entry_name!r}: FreeSWITCH treats it as a proxy"
        )
    live_value: bool | None = None
    if live is not None:
        try:
            answer = live(ip, TRUSTED).strip()
            live_value = answer == "true"
            data["live_trusted"] = live_value
            evidence.append(f"event socket: api acl {ip} trusted -> {answer}")
        except Exception as exc:  # the live check is a cross-check: say why it is missing
            evidence.append(f"event socket: live ACL not checked ({exc})")
    else:
        evidence.append("event socket: not configured, live ACL not checked")
    reload_fix = (
        "reload the lists: sup kapps_config flush ecallmgr, then sup -necallmgr ecallmgr_maintenance "
        "reload_acls (or fs_cli -x reloadacl on every FreeSWITCH)"
    )
    if authoritative:
        return Step(
            Cause.ACL,
            "problem",
            f"{ip} is listed as authoritative (an SBC/proxy), not as a carrier",
            evidence,
            data,
            fix="an SBC must not be listed as a carrier: have the carrier send from its own address "
            "and list that "
            "in trusted (sup -necallmgr ecallmgr_maintenance allow_carrier NAME IP); keep authoritative for "
            "Kazoo's own Kamailio nodes only",
            cause=Cause.ACL,
        )
    # `api acl IP LIST` checks without a port: compare it with the document's port-less answer
    if live_value is not None and live_value != (lists.check(TRUSTED, ip, None) is not None):
        doc_says = "trusted" if trusted else "not trusted"
        live_says = "trusts" if live_value else "does not trust"
        return Step(
            Cause.ACL,
            "problem",
            f"the document says {ip} is {doc_says} but the live ACL {live_says} it (not reloaded)",
            evidence,
            data,
            fix=reload_fix,
            cause=Cause.ACL,
        )
    if trusted is None:
        return Step(
            Cause.ACL,
            "problem",
            f"{ip} is not in the trusted ACL",
            evidence,
            data,
            fix=f"sup -necallmgr ecallmgr_maintenance allow_carrier CARRIER_NAME {ip} (or add an entry with "
            "network-list-name trusted to system_config/ecallmgr, or POST /v2/system_configs/ecallmgr), then "
            + reload_fix,
            cause=Cause.ACL,
        )
    return Step(Cause.ACL, "ok", f"{ip} is trusted ({trusted.entry_name})", evidence, data)


def _contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def format_step(
    reader: kn.DocReader, number: str, ruri_user: str | None, node: str | None = None
) -> tuple[Step, str | None]:
    """The number Kazoo will look up (returned) and whether it is usable."""
    config = kn.InboundConfig.read(reader, node)
    nm, ss = config.number_manager, config.stepswitch
    field_name = str(kn.config_value(ss, "inbound_user_field", "Request", node))
    read = config.dialed(ruri_user or number, number)
    e164 = config.destination(read)
    reconcilable = e164 is not None and config.reconcilable(e164)
    evidence = [
        f"system_config/number_manager: {'present' if nm else 'absent, Kazoo defaults'}",
        f"stepswitch inbound_user_field = {field_name} (Kazoo reads the "
        f"{'To header' if field_name == 'To' else 'Request-URI'} user)",
        f"assume_inbound_e164 = {kn.config_value(ss, 'assume_inbound_e164', False, node)}",
        f"Kazoo reads {read!r} -> E.164 {e164!r}, reconcilable: {reconcilable}",
    ]
    data = {
        "inbound_user_field": field_name,
        "read": read,
        "e164": e164,
        "reconcilable": reconcilable,
        "classifier": kn.classify(e164, nm) if e164 else None,
    }
    wanted = kn.normalize(number, nm, node)
    if read != number and e164 != wanted:
        return Step(
            Cause.NUMBER_FORMAT,
            "problem",
            f"the number is only in the To header: Kazoo reads the Request-URI user {read!r}",
            evidence,
            data,
            fix="have the carrier put the dialed number in the Request-URI, or set system_config stepswitch "
            'inbound_user_field = "To" (then sup kapps_config flush stepswitch)',
            cause=Cause.NUMBER_FORMAT,
        ), wanted
    if not reconcilable:
        return Step(
            Cause.NUMBER_FORMAT,
            "problem",
            f"{read!r} does not normalize to a reconcilable E.164 number ({e164!r})",
            evidence,
            data,
            fix="have the carrier send E.164 (+CC...) or a form number_manager's e164_converters "
            "turn into it; "
            "or add a converter in system_config number_manager (then sup kapps_config flush number_manager)",
            cause=Cause.NUMBER_FORMAT,
        ), e164
    return Step(Cause.NUMBER_FORMAT, "ok", f"{read!r} normalizes to {e164}", evidence, data), e164


def _numbers_dbs(reader: kn.DocReader) -> list[str]:
    all_dbs = getattr(reader, "all_dbs", None)
    if all_dbs is None:
        return []
    return [str(db) for db in all_dbs() if str(db).startswith("numbers")]


def mapping_step(reader: kn.DocReader, e164: str | None, node: str | None = None) -> Step:
    if not e164:
        return Step(Cause.NUMBER_MAPPING, "skipped", "no E.164 number to look up")
    db = kn.numbers_db(e164)
    if db is None:  # knm_converters:to_db/1 gives undefined: nothing to look the number up in
        return Step(
            Cause.NUMBER_MAPPING,
            "skipped",
            f"{e164!r} is too short to name a numbers database (numbers/ + its first 5 characters)",
            [f"knm_converters:to_db({e164!r}) -> undefined"],
            {"db": None, "found": False, "reason": "not_reconcilable"},
        )
    evidence = [f"numbers database: {db} (URL {kn.encode_db(db) if db else '-'})"]
    lookup = kn.lookup_number(reader, e164, node)
    data: dict[str, Any] = {
        "db": db,
        "found": lookup.doc is not None,
        "state": lookup.state,
        "account_id": lookup.account_id,
        "routes": lookup.state in kn.ROUTING_STATES if lookup.state else False,
        "callflow_id": None,
        "reason": lookup.reason,
        "found_in_db": None,
    }
    if lookup.reason == "not_found":
        elsewhere = [d for d in _numbers_dbs(reader) if d != db and reader.get(d, e164) is not None]
        if elsewhere:
            data["found_in_db"] = elsewhere[0]
            evidence.append(f"{db}/{e164}: not found; a document for it is in {elsewhere[0]}")
            return Step(
                Cause.NUMBER_MAPPING,
                "problem",
                f"{e164} is stored in the wrong database {elsewhere[0]}",
                evidence,
                data,
                fix=f"move the number document to {db} (re-add the number through Crossbar: "
                f"PUT /v2/accounts/ACCOUNT/phone_numbers/{e164}, then activate)",
                cause=Cause.NUMBER_MAPPING,
            )
        evidence.append(f"{db}/{e164}: not found")
        return Step(
            Cause.NUMBER_MAPPING,
            "problem",
            f"{e164} is not in Kazoo's numbers database",
            evidence,
            data,
            fix=f"add it: PUT /v2/accounts/ACCOUNT/phone_numbers/{e164} then PUT .../{e164}/activate "
            f"(check with sup stepswitch_maintenance lookup_number {e164})",
            cause=Cause.NUMBER_MAPPING,
        )
    evidence.append(f"{db}/{e164}: pvt_state {lookup.state!r}, pvt_assigned_to {lookup.account_id!r}")
    if lookup.reason == "unassigned":
        return Step(
            Cause.NUMBER_MAPPING,
            "problem",
            f"{e164} is assigned to no account",
            evidence,
            data,
            fix=f"assign it: PUT /v2/accounts/ACCOUNT/phone_numbers/{e164}, then activate",
            cause=Cause.NUMBER_MAPPING,
        )
    if lookup.reason == "not_in_service":
        return Step(
            Cause.NUMBER_MAPPING,
            "problem",
            f"{e164} is in state {lookup.state!r}, which does not route "
            f"(routing states: {', '.join(sorted(kn.ROUTING_STATES))})",
            evidence,
            data,
            fix=f"activate it: PUT /v2/accounts/{lookup.account_id}/phone_numbers/{e164}/activate "
            "(in_service)",
            cause=Cause.NUMBER_MAPPING,
        )
    if lookup.reason == "account_disabled":
        return Step(
            Cause.NUMBER_MAPPING,
            "problem",
            f"account {lookup.account_id} is disabled",
            evidence,
            data,
            fix=f"enable the account: POST /v2/accounts/{lookup.account_id} with enabled true",
            cause=Cause.NUMBER_MAPPING,
        )
    if not lookup.ok or lookup.account_id is None:  # not_reconcilable after normalization
        return Step(
            Cause.NUMBER_MAPPING,
            "skipped",
            f"{e164!r} does not normalize to a number stepswitch can look up ({lookup.reason})",
            evidence,
            data,
        )
    callflow = kn.find_callflow(reader, lookup.account_id, e164)
    if callflow is None:
        evidence.append(f"{kn.account_db(lookup.account_id)}: no callflow lists {e164}")
        return Step(
            Cause.NUMBER_MAPPING,
            "problem",
            f"{e164} routes to account {lookup.account_id}, which has no callflow for it",
            evidence,
            data,
            fix=f'create a callflow: PUT /v2/accounts/{lookup.account_id}/callflows with numbers ["{e164}"] '
            "(without one callers get 486 PICNIC)",
            cause=Cause.NUMBER_MAPPING,
        )
    data["callflow_id"] = callflow.get("_id")
    evidence.append(f"callflow {callflow.get('_id')} ({callflow.get('name', '')!s}) lists {e164}")
    return Step(
        Cause.NUMBER_MAPPING,
        "ok",
        f"{e164} routes to account {lookup.account_id}, callflow found",
        evidence,
        data,
    )


def decide(diagnosis: Diagnosis) -> Diagnosis:
    """Set the verdict: the first step with a problem, else none found, else unknown."""
    for step in diagnosis.steps:
        if step.status == "problem":
            diagnosis.cause = step.cause or UNKNOWN
            diagnosis.verdict = step.summary
            diagnosis.fix = step.fix
            return diagnosis
        if step.status == "error":
            diagnosis.cause = UNKNOWN
            diagnosis.verdict = f"could not check {step.name}: {step.summary}"
            return diagnosis
    diagnosis.cause = NONE
    diagnosis.verdict = "none found: the ACL, the number's format and its mapping look right"
    return diagnosis


def diagnose(
    reader: kn.DocReader,
    *,
    number: str,
    carrier_ip: str,
    carrier_port: int | None = None,
    node: str | None = None,
    ruri_user: str | None = None,
    live_acl: LiveAcl | None = None,
    target: str = "",
    extra_steps: list[Step] | None = None,
) -> Diagnosis:
    """Run the document steps against ``reader`` (CouchClient or DocumentStore); ``extra_steps`` (the
    INVITE step) are judged after them. Any number string gets a verdict; ``carrier_ip`` must be an IP
    address (ValueError otherwise: a usage error, before anything is read)."""
    ipaddress.ip_address(carrier_ip)
    steps = [_guarded(Cause.ACL, lambda: acl_step(reader, carrier_ip, carrier_port, node, live_acl))]
    holder: dict[str, str | None] = {}

    def fmt() -> Step:
        step, e164 = format_step(reader, number, ruri_user, node)
        holder["e164"] = e164
        return step

    steps.append(_guarded(Cause.NUMBER_FORMAT, fmt))
    steps.append(_guarded(Cause.NUMBER_MAPPING, lambda: mapping_step(reader, holder.get("e164"), node)))
    steps.extend(extra_steps or [])
    return decide(Diagnosis(number, carrier_ip, carrier_port, target, steps))


def _guarded(name: str, run: Callable[[], Step]) -> Step:
    from harness.kazoo.couch import CouchError

    try:
        return run()
    except CouchError as exc:
        return Step(name, "error", f"the documents could not be read: {exc}")
