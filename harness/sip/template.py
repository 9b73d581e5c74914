"""A captured INVITE as a raw template (the scenario field ``send.raw``) and back to bytes.

The template is the captured text with the values that must change per run replaced by placeholders:
``{target_host}:{target_port}`` for the Request-URI's host (everywhere in the headers),
``{source_ip}:{source_port}`` for the top Via's sent-by (everywhere in the headers), ``{call_id}``,
``{branch}`` (top Via) and ``{from_tag}``. Literal braces are doubled (``{{``). The body is never
templated, so Content-Length stays right. Line ends: a template without any CR is sent with every LF
as CRLF (the readable YAML form); a template holding CRs is sent exactly as written.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping

from harness.sip.message import Request, parse_message

Address = tuple[str, int]

PLACEHOLDERS = ("target_host", "target_port", "source_ip", "source_port", "call_id", "branch", "from_tag")
_FIELD = re.compile(r"\{\{|\}\}|\{([a-z_]+)\}")
_HEAD_END = re.compile(r"\r?\n\r?\n")


class TemplateError(ValueError):
    """A template that names an unknown placeholder, or a message that cannot become one."""


def _hostport(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return shown if port is None else f"{shown}:{port}"


def _replace_token(text: str, token: str, placeholder: str) -> str:
    """Replace ``token`` where it stands alone (not inside a longer host, number or word)."""
    return re.sub(rf"(?<![\w.\-]){re.escape(token)}(?![\w\-]|\.\w)", lambda _: placeholder, text)


def to_template(data: bytes) -> str:
    """The template of a captured INVITE: placeholders where a run needs its own values."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(
            f"the captured INVITE is not UTF-8 text (byte {exc.start}); cannot template it"
        ) from exc
    msg = parse_message(data)
    if not isinstance(msg, Request):
        raise TemplateError("not a request")
    split = _HEAD_END.search(text)
    head, body = (text[: split.end()], text[split.end() :]) if split else (text, "")
    head, body = head.replace("{", "{{").replace("}", "}}"), body.replace("{", "{{").replace("}", "}}")
    # identifiers first (their values may contain the addresses: "abc@127.0.0.10")
    head = head.replace(msg.call_id, "{call_id}")
    via = msg.top_via
    if via.branch:
        head = head.replace(f"branch={via.branch}", "branch={branch}", 1)
    tag = msg.from_.tag
    if tag:
        lines = head.split("\n")
        for i, line in enumerate(lines):
            if re.match(r"(?i)(from|f)[ \t]*:", line):
                lines[i] = re.sub(
                    rf"(;[ \t]*tag[ \t]*=[ \t]*){re.escape(tag)}", r"\1{from_tag}", line, count=1
                )
                break
        head = "\n".join(lines)
    target = _hostport(msg.uri.host, msg.uri.port)
    if msg.uri.port is None:  # no port written: the R-URI gets one so the run's target port is used
        first, rest = head.split("\n", 1)
        head = _replace_token(first, target, "{target_host}:{target_port}") + "\n"
        head += _replace_token(rest, target, "{target_host}")
    else:
        head = _replace_token(head, target, "{target_host}:{target_port}")
    head = _replace_token(head, _hostport(via.host, via.port), "{source_ip}:{source_port}")
    return head + body


def fill_template(template: str, values: Mapping[str, str], *, exact: bool = False) -> bytes:
    """The bytes to send: placeholders filled, ``{{``/``}}`` undone, LF sent as CRLF when there is no CR
    (``exact``: line ends as written)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        name = m.group(1)
        if name not in values:
            raise TemplateError(f"raw template uses {{{name}}}; known: {', '.join(sorted(values))}")
        return values[name]

    text = template if exact or "\r" in template else template.replace("\n", "\r\n")
    return _FIELD.sub(sub, text).encode("utf-8")


def run_values(*, target: Address, source: Address, call_id: str, seed: int | None = None) -> dict[str, str]:
    """Placeholder values for one run: the target and source, a Call-ID, a seeded branch and From tag."""
    rng = random.Random(seed)
    return {
        "target_host": target[0],
        "target_port": str(target[1]),
        "source_ip": source[0],
        "source_port": str(source[1]),
        "call_id": call_id,
        "branch": f"z9hG4bK-raw-{rng.getrandbits(48):012x}",
        "from_tag": f"raw-{rng.getrandbits(32):08x}",
    }


def raw_bytes(
    template: str, *, target: Address, source: Address, call_id: str, seed: int | None = None
) -> bytes:
    """For the scenario runner: the bytes of a ``send.raw`` template for one run."""
    return fill_template(template, run_values(target=target, source=source, call_id=call_id, seed=seed))


__all__ = ["PLACEHOLDERS", "TemplateError", "fill_template", "raw_bytes", "run_values", "to_template"]
