"""Kamailio's pike module: the per-source-address request counter behind ``pike_check_req()``.

Read from kamailio/kamailio src/modules/pike (ip_tree.c ``mark_node``/``split_node``, pike_funcs.c
``pike_check_ipaddr``/``clean_routine``/``swap_routine``, timer.c). Pike does not keep one counter per
address: it keeps a tree with one level per address byte, shared by every source. A request walks the
longest prefix of its address that is in the tree:

- the whole address is there (an IP leaf): the leaf's hit counter for the current time unit goes up;
  the leaf turns *red* (blocked) when a counter reaches ``reqs_density_per_unit`` in the previous or
  the current unit, or their mean does; red leaves keep counting the requests they block;
- only a prefix is there: that node's hits go up, and once it is *hot* (a quarter of the density in
  a unit) the next byte is split off as a child, which inherits the parent's hits less one;
- nothing: a first-byte node is created.

So a new address is not judged from its first request: the path to its leaf is grown first (in a
fresh tree, with the default density 50: 12 requests warm the first byte, then one request splits each
next byte, 14 in all for IPv4), and only then are its leaf hits counted, 49 passing: in a fresh tree
the first 63 requests of a burst pass and the 64th is the first blocked. A neighbour whose prefix is
already grown gets its leaf at once: 50 pass.

Time, in Kamailio's ticks (seconds since start): every ``sampling_time_unit`` the swap moves each
node's current counters to the previous slot and zeroes the current ones, and un-reds leaves that are
no longer hot (``PIKE - UNBLOCKing``). Every tick the cleaner removes nodes not refreshed for
``remove_latency`` ticks (a leaf is refreshed by each of its hits; a prefix node only while warm),
which forgets their counts. A blocked address is therefore let through again one or two units after
its requests stop (at the first swap that finds it cold), or when its leaf is removed.

The tree is sans-I/O: :meth:`PikeTree.check` takes the time; lines pike itself logs go to ``log``.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

PREV, CURR = 0, 1
MAX_HITS = 0xFFFF - 1  # unsigned short counters stop one below their maximum


@dataclass(frozen=True)
class PikeSettings:
    """pike's modparams (antiflood-role.cfg sets them from the ANTIFLOOD_RATE_* defines)."""

    sampling_time_unit: int = 2  # ANTIFLOOD_RATE_WINDOW
    reqs_density_per_unit: int = 50  # ANTIFLOOD_RATE_DENSITY
    remove_latency: int = 4  # ANTIFLOOD_RATE_EXPIRE

    def __post_init__(self) -> None:
        if self.sampling_time_unit < 1 or self.reqs_density_per_unit < 1 or self.remove_latency < 1:
            raise ValueError("pike's time unit, density and remove latency must be positive")


PikeEvent = Literal["block", "unblock"]  # which of pike's own lines (sbc_lines.CORE pike_block/unblock)


class Verdict(enum.Enum):
    ALLOWED = 1  # pike_check_req() returns 1
    BLOCKED = -1  # an already red address
    NEWLY_BLOCKED = -2  # this request turned the address red ("PIKE - BLOCKing ip ...")

    @property
    def blocked(self) -> bool:
        return self is not Verdict.ALLOWED


class _Node:
    __slots__ = ("byte", "expires", "hits", "ip_leaf", "kids", "leaf_hits", "parent", "red")

    def __init__(self, byte: int, parent: _Node | None) -> None:
        self.byte = byte
        self.parent = parent
        self.kids: dict[int, _Node] = {}
        self.hits = [0, 0]
        self.leaf_hits = [0, 0]
        self.ip_leaf = False
        self.red = False
        self.expires = 0


class PikeTree:
    """One Kamailio instance's pike state; ``start`` is the instance's start on the monotonic clock."""

    def __init__(
        self,
        settings: PikeSettings | None = None,
        *,
        start: float = 0.0,
        log: Callable[[PikeEvent, str], None] | None = None,
    ) -> None:
        self.settings = settings or PikeSettings()
        self.max_hits = self.settings.reqs_density_per_unit
        self._start = start
        self._ticks = 0
        self._roots: dict[int, _Node] = {}
        self._timer: dict[_Node, None] = {}  # insertion-ordered, as pike's timer list
        self._log = log or (lambda _event, _text: None)

    # ------------------------------------------------------------------ the hot/warm tests (ip_tree.c)
    def _hot_leaf(self, node: _Node) -> bool:
        prev, curr = node.leaf_hits
        return prev >= self.max_hits or curr >= self.max_hits or (prev + curr) >> 1 >= self.max_hits

    def _hot_non_leaf(self, node: _Node) -> bool:
        quarter = self.max_hits >> 2
        prev, curr = node.hits
        return prev >= quarter or curr >= quarter or (prev + curr) >> 1 >= quarter

    def _warm(self, node: _Node) -> bool:
        return node.hits[CURR] >= self.max_hits >> 2

    # ------------------------------------------------------------------ requests
    def check(self, ip: str, now: float) -> Verdict:
        """``pike_check_req()`` for a request from ``ip`` at monotonic time ``now``."""
        self.advance(now)
        address = ipaddress.ip_address(ip).packed
        node, father, new_node, no_update, red, newly_red = self._mark(address)
        if new_node:
            self._timer_add(node)
            if father is not None and not father.ip_leaf and len(father.kids) == 1:
                self._timer.pop(father, None)  # a prefix with kids ages only once they are gone
        elif (node.ip_leaf or not node.kids) and not no_update:
            self._timer_add(node)  # update_in_timer: a later expiry, at the list's end
        if newly_red:
            self._log("block", f"PIKE - BLOCKing ip {ip}, node={self._pointer(node)}")
            return Verdict.NEWLY_BLOCKED
        return Verdict.BLOCKED if red else Verdict.ALLOWED

    def _mark(self, address: bytes) -> tuple[_Node, _Node | None, bool, bool, bool, bool]:
        """mark_node(): (node, father, NEW_NODE, NO_UPDATE, RED_NODE, NEWRED_NODE)."""
        node: _Node | None = None
        kids = self._roots
        depth = 0
        while depth < len(address):
            kid = kids.get(address[depth])
            if kid is None:
                break
            node, kids, depth = kid, kid.kids, depth + 1
        if node is None:  # an empty branch: a first-byte node with one hit
            node = self._roots[address[0]] = _Node(address[0], None)
            node.hits[CURR] = 1
            return node, None, True, False, False, False
        if depth == len(address):  # the whole address: an IP leaf
            node.ip_leaf = True
            if node.leaf_hits[CURR] < MAX_HITS:
                node.leaf_hits[CURR] += 1
            if node.red:
                return node, None, False, False, True, False
            if self._hot_leaf(node):
                node.red = True
                return node, None, False, False, True, True
            return node, None, False, False, False, False
        if node.hits[CURR] < MAX_HITS:  # a prefix only
            node.hits[CURR] += 1
        if self._hot_non_leaf(node):
            child = self._split(node, address[depth])
            return child, node, True, False, False, False
        return node, None, False, not self._warm(node), False, False

    @staticmethod
    def _split(dad: _Node, byte: int) -> _Node:
        child = _Node(byte, dad)
        if dad.hits[CURR] >= 1:
            child.hits[CURR] = dad.hits[CURR] - 1
        if dad.leaf_hits[CURR] >= 1:  # as split_node() has it (only matters for IPv4 inside IPv6)
            child.leaf_hits[PREV] = max(dad.leaf_hits[PREV] - 1, 0)
        dad.kids[byte] = child
        return child

    # ------------------------------------------------------------------ timers
    def advance(self, now: float) -> None:
        """Run the timers due up to ``now``: the cleaner every tick, the swap every time unit."""
        target = int(now - self._start)
        unit = self.settings.sampling_time_unit
        while self._ticks < target:
            if not self._roots:  # nothing to age: jump
                self._ticks = target
                return
            self._ticks += 1
            self._clean(self._ticks)
            if self._ticks % unit == 0:
                self._swap()

    def _timer_add(self, node: _Node) -> None:
        self._timer.pop(node, None)
        node.expires = self._ticks + self.settings.remove_latency
        self._timer[node] = None

    def _clean(self, ticks: int) -> None:
        """clean_routine(): expire, from the head of the timer list, the nodes due by ``ticks``."""
        due: list[_Node] = []
        for node in self._timer:
            if node.expires > ticks:
                break
            due.append(node)
        for node in due:
            del self._timer[node]
            node.expires = 0
            if node.kids:  # an address leaf that also prefixes longer addresses: stays as a prefix
                node.ip_leaf = False
                node.leaf_hits[CURR] = 0
                continue
            parent = node.parent
            if parent is None:
                del self._roots[node.byte]
                continue
            del parent.kids[node.byte]
            if not parent.kids and not parent.ip_leaf:  # its last kid: the father ages in turn
                self._timer_add(parent)

    def _swap(self) -> None:
        """swap_routine(): current counters become the previous ones; cold red leaves are let go."""
        stack = list(self._roots.values())
        while stack:
            node = stack.pop()
            node.hits[PREV], node.hits[CURR] = node.hits[CURR], 0
            node.leaf_hits[PREV], node.leaf_hits[CURR] = node.leaf_hits[CURR], 0
            if node.red and not self._hot_leaf(node):
                node.red = False
                self._log("unblock", f"PIKE - UNBLOCKing node {self._pointer(node)}")
            stack.extend(node.kids.values())

    @staticmethod
    def _pointer(node: _Node) -> str:
        return f"0x{id(node):x}"

    # ------------------------------------------------------------------ introspection (tests, docs)
    def _node_of(self, ip: str) -> _Node | None:
        """The node at the end of ``ip``'s full path, None when the tree has not grown that far."""
        node: _Node | None = None
        kids = self._roots
        for byte in ipaddress.ip_address(ip).packed:
            node = kids.get(byte)
            if node is None:
                return None
            kids = node.kids
        return node

    def leaf_hits(self, ip: str) -> tuple[int, int] | None:
        """The (previous, current) hit counters of ``ip``'s leaf, or None when it has none."""
        node = self._node_of(ip)
        return (node.leaf_hits[PREV], node.leaf_hits[CURR]) if node is not None and node.ip_leaf else None

    def is_blocked(self, ip: str) -> bool:
        node = self._node_of(ip)
        return node is not None and node.red

    @property
    def node_count(self) -> int:
        count, stack = 0, list(self._roots.values())
        while stack:
            node = stack.pop()
            count += 1
            stack.extend(node.kids.values())
        return count
