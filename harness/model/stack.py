"""The embedded Kazoo stack: the roles wired together on loopback, in the foreground or a thread.

``ModelStack(config).start()`` binds, in order, the CouchDB API, the event socket, the media role
(FreeSWITCH) and the SBC role (Kamailio) whose dispatcher points at the media role. ``start_model``
runs a stack in a background thread with its own event loop and returns once every listener is bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from harness.model.antiflood import AntifloodSettings
from harness.model.clock import SYSTEM_CLOCK, Clock
from harness.model.couch_server import CouchServer
from harness.model.esl_server import EslServer
from harness.model.logbus import LogBus
from harness.model.media import MediaRole
from harness.model.routing import RoutingRole
from harness.model.sbc import PROBE_TIMEOUT, ROLE_SWITCHES, SbcRole
from harness.model.store import DocumentStore
from harness.model.transport import Address

PROFILES = ("kazoo-4.3", "kazoo-5")
DEFAULT_NODE = "ecallmgr@kazoo-model.local"
START_DEADLINE = 30.0
STOP_DEADLINE = 10.0


@dataclass
class ModelConfig:
    """What to run. Port 0 anywhere means a free port; ``*_host`` None means ``host``."""

    profile: str = "kazoo-4.3"
    data_dir: Path | None = None  # None: the built-in demo data
    log_dir: Path | None = None  # None: a new temporary directory
    host: str = "127.0.0.1"
    sbc_port: int = 5060
    media_port: int = 11000
    esl_port: int = 8021
    esl_password: str = "ClueCon"
    couch_port: int = 5984
    node: str = DEFAULT_NODE
    route_timeout: float = 2.6
    sanity_drops_request: bool = True
    role_switches: dict[str, bool] = field(default_factory=dict)
    media_enabled: bool = True  # False: the dispatcher has no live media server (480 All servers busy)
    sbc_host: str | None = None
    media_host: str | None = None
    esl_host: str | None = None
    couch_host: str | None = None
    dispatcher_probe: float = PROBE_TIMEOUT
    antiflood: AntifloodSettings = field(default_factory=AntifloodSettings)  # with role_switches antiflood
    clock: Clock = SYSTEM_CLOCK  # what the Kamailio roles' timers read (tests step a ManualClock)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        unknown = set(self.role_switches) - set(ROLE_SWITCHES)
        if unknown:
            raise ValueError(f"unknown role switch(es) {sorted(unknown)}; known: {', '.join(ROLE_SWITCHES)}")

    def host_of(self, role: str) -> str:
        chosen: str | None = getattr(self, f"{role}_host")
        return chosen or self.host


def load_store(data_dir: Path | None) -> DocumentStore:
    if data_dir is not None:
        return DocumentStore.from_dir(data_dir)
    from harness.model.demo import load_demo

    return load_demo()


def _unused_udp_port(host: str) -> int:
    """A port with nothing listening, for a dispatcher entry whose media server is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ModelStack:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.log_dir = (
            Path(config.log_dir) if config.log_dir else Path(tempfile.mkdtemp(prefix="kazoo-model-"))
        )
        self.store = load_store(config.data_dir)
        self.bus = LogBus(self.log_dir, config.profile)
        self.routing = RoutingRole(self.store, self.bus, config.node, config.route_timeout)
        self.couch = CouchServer(self.store, config.host_of("couch"), config.couch_port)
        self.esl = EslServer(
            self.bus, config.host_of("esl"), config.esl_port, config.esl_password, api_handler=self.api
        )
        self.media: MediaRole | None = None
        self.sbc: SbcRole | None = None

    async def start(self) -> None:
        config = self.config
        await self.couch.start()
        await self.esl.start()
        media_host = config.host_of("media")
        if config.media_enabled:
            self.media = MediaRole(
                host=media_host,
                port=config.media_port,
                profile=config.profile,
                store=self.store,
                bus=self.bus,
                routing=self.routing,
                node=config.node,
                events=self.esl.publish_event,
            )
            dispatcher = await self.media.start()
        else:
            dispatcher = (media_host, config.media_port or _unused_udp_port(media_host))
        self.sbc = SbcRole(
            host=config.host_of("sbc"),
            port=config.sbc_port,
            profile=config.profile,
            bus=self.bus,
            store=self.store,
            dispatcher=dispatcher,
            node=config.node,
            sanity_drops_request=config.sanity_drops_request,
            switches=config.role_switches,
            probe_timeout=config.dispatcher_probe,
            clock=config.clock,
            antiflood=config.antiflood,
        )
        await self.sbc.start()

    async def stop(self) -> None:
        for part in (self.sbc, self.media):
            if part is not None:
                await part.stop()
        await self.esl.stop()
        await self.couch.stop()
        self.bus.close()

    async def api(self, command: str) -> str:
        """The event socket's ``api`` commands the model understands."""
        name, _, args = command.strip().partition(" ")
        if name == "acl":  # FreeSWITCH's `acl <ip> <list>`: the live (last loaded) lists, "true"/"false"
            ip, _, list_name = args.strip().partition(" ")
            if not ip or not list_name.strip() or self.media is None:
                return "-ERR Usage: acl <ip> <list_name>\n"
            try:
                return "true" if self.media.acls.check(list_name.strip(), ip) is not None else "false"
            except ValueError:
                return "false"
        if name == "reloadacl":
            if self.media is not None:
                self.media.reload_acl()
            if self.sbc is not None:
                self.sbc.reload_acl()
            return "+OK acl reloaded\n"
        if name == "status":
            return "UP 0 years, 0 days, 0 hours, 0 minutes\nFreeSWITCH (Version 1.10 kazoo-model) is ready\n"
        return f"-ERR {name} Command not found!\n"

    # addresses, once started
    @property
    def sbc_address(self) -> Address:
        assert self.sbc is not None
        return self.sbc.address

    @property
    def media_address(self) -> Address:
        if self.media is not None:
            return self.media.address
        assert self.sbc is not None
        return self.sbc.dispatcher

    @property
    def esl_address(self) -> Address:
        return (self.config.host_of("esl"), self.esl.port)

    @property
    def couch_url(self) -> str:
        return f"http://{self.config.host_of('couch')}:{self.couch.port}"


@dataclass
class RunningModel:
    """A model running in a background thread; ``stop()`` ends it (idempotent)."""

    sbc: Address
    media: Address
    esl: Address
    couch_url: str
    log_dir: Path
    profile: str
    node: str
    config: ModelConfig
    store: DocumentStore
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _stopping: asyncio.Event = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        if self._thread.is_alive() and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop closed in between
                pass
        if self._thread is not threading.current_thread():
            self._thread.join(STOP_DEADLINE)

    def __enter__(self) -> RunningModel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_model(config: ModelConfig | None = None) -> RunningModel:
    """Run a :class:`ModelStack` in a background thread; return once every listener is bound."""
    config = config or ModelConfig()
    ready = threading.Event()
    outcome: dict[str, object] = {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        stopping = asyncio.Event()
        stack: ModelStack | None = None
        try:
            stack = ModelStack(config)
            await stack.start()
        except BaseException as exc:
            outcome["error"] = exc
            if stack is not None:  # release what did bind (a busy port further down)
                with contextlib.suppress(Exception):
                    await stack.stop()
            ready.set()
            return
        outcome["stack"], outcome["stopping"] = stack, stopping
        ready.set()
        try:
            await stopping.wait()
        finally:
            await stack.stop()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="kazoo-model", daemon=True)
    thread.start()
    if not ready.wait(START_DEADLINE):
        raise TimeoutError(f"the Kazoo model did not bind its listeners within {START_DEADLINE} s")
    error = outcome.get("error")
    if isinstance(error, BaseException):
        thread.join(STOP_DEADLINE)
        raise RuntimeError(f"the Kazoo model failed to start: {error}") from error
    stack = outcome["stack"]
    stopping = outcome["stopping"]
    assert isinstance(stack, ModelStack) and isinstance(stopping, asyncio.Event)
    return RunningModel(
        sbc=stack.sbc_address,
        media=stack.media_address,
        esl=stack.esl_address,
        couch_url=stack.couch_url,
        log_dir=stack.log_dir,
        profile=config.profile,
        node=config.node,
        config=config,
        store=stack.store,
        _loop=loop,
        _stopping=stopping,
        _thread=thread,
    )
