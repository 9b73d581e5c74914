"""local.cfg: the operator's file, with only the site values set by the harness; and the roles it turns on.

An operator's /etc/kazoo/kamailio/local.cfg says two kinds of things: which roles run (``#!trydef
DISPATCHER_ROLE``...) and where this server lives (hostname, IP, AMQP URL, database, listeners, process
counts). The roles are the operator's and stay as written: :func:`roles_of` reads them back so the model and
the profile can follow. The site values are the harness's, since its SBC lives on loopback with free
ports, a private broker and a private database: :func:`with_site_values` comments out the operator's own
lines for those names (kept in place, so line numbers still match the operator's file) and puts the
harness's values on top.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.kazoo.roles import ROLE_SUFFIX, role_define, role_name

# `#!define NAME` / `#!trydef NAME` at the start of a line turns a role on; `# # #!trydef` is Kazoo's
# commented-out form, `#!undef` turns one off again.
_DIRECTIVE = re.compile(
    r"^[ \t]*#!(define|def|trydef|redefine|redef|undef)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.M
)
_SUBSTDEF = re.compile(r'^[ \t]*#!substdef[ \t]+"!([A-Za-z_][A-Za-z0-9_]*)!', re.M)
_LISTEN = re.compile(r"^[ \t]*listen[ \t]*=", re.M)
HARNESS_MARK = "# kazoo-harness"


def roles_of(text: str) -> frozenset[str]:
    """The roles a local.cfg turns on, in order of its directives (``#!undef`` turns one off)."""
    on: set[str] = set()
    for directive, name in _DIRECTIVE.findall(text):
        if not name.endswith(ROLE_SUFFIX):
            continue
        if directive == "undef":
            on.discard(role_name(name))
        else:
            on.add(role_name(name))
    return frozenset(on)


def set_roles(text: str, on: frozenset[str] = frozenset(), off: frozenset[str] = frozenset()) -> str:
    """The operator's own way to switch roles: ``on`` gets a ``#!trydef`` where Kazoo's commented-out line
    is (or at the end), ``off`` has its directives commented out. For making operator-style copies."""
    lines = text.splitlines()
    for role in off:
        define = role_define(role)
        lines = [
            f"# {line}" if (m := _DIRECTIVE.match(line)) and m.group(2) == define else line for line in lines
        ]
    for role in on - roles_of("\n".join(lines)):
        define = role_define(role)
        commented = re.compile(rf"^[# \t]+#!trydef[ \t]+{define}\b")
        for index, line in enumerate(lines):
            if commented.match(line):
                lines[index] = f"#!trydef {define}"
                break
        else:
            lines.append(f"#!trydef {define}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SiteValues:
    """Where the harness's SBC lives. ``defines`` are ``#!define NAME VALUE`` (numbers, flags),
    ``substs`` are ``#!substdef "!NAME!VALUE!g"`` (text the config pastes into its own strings)."""

    substs: Mapping[str, str]
    defines: Mapping[str, str]
    listen: tuple[str, ...]  # listen= values, e.g. "UDP_SIP" (names from ``substs``) or "udp:IP:PORT"
    unset: tuple[str, ...] = ()  # names the harness leaves at the tree's default (the operator's too)

    def names(self) -> frozenset[str]:
        return frozenset(self.substs) | frozenset(self.defines) | frozenset(self.unset)

    def block(self) -> str:
        lines = [f"{HARNESS_MARK}: site values (the roles below are the operator's)"]
        for name, value in self.substs.items():
            if "!" in value:
                raise ValueError(f"site value {name}={value!r} cannot hold '!' (the substdef delimiter)")
            lines.append(f'#!substdef "!{name}!{value}!g"')
        lines += [f"#!define {name} {value}".rstrip() for name, value in self.defines.items()]
        lines += [f"listen={value}" for value in self.listen]
        lines.append(f"{HARNESS_MARK}: end of site values")
        return "\n".join(lines) + "\n"


def with_site_values(text: str, site: SiteValues) -> str:
    """The operator's local.cfg with their own site lines (those names, and every ``listen=``) commented
    out in place and the harness's site block on top. Roles and every other setting are untouched."""
    names = site.names()
    out = []
    for line in text.splitlines():
        directive = _DIRECTIVE.match(line)
        subst = _SUBSTDEF.match(line)
        named = (directive and directive.group(2) in names) or (subst and subst.group(1) in names)
        if named or _LISTEN.match(line):
            out.append(f"{HARNESS_MARK} (site value set above): {line}")
        else:
            out.append(line)
    return site.block() + "\n".join(out) + "\n"
