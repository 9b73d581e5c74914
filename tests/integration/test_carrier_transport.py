"""The transports on their own, over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from harness.net.transport import (
    MAX_UDP_PAYLOAD,
    MessageTooLarge,
    Packet,
    PeerClosed,
    TargetUnreachable,
    TransportError,
    open_transport,
)

SOURCE = ("127.0.0.66", 0)


def test_udp_send_receive_and_deadline() -> None:
    async def scenario() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            peer.setblocking(False)
            loop = asyncio.get_running_loop()
            transport = await open_transport("udp", SOURCE, peer.getsockname())
            try:
                assert transport.local[0] == "127.0.0.66" and transport.local[1] != 0
                assert not transport.reliable
                assert await transport.receive(0.05) is None  # nothing came: None at the deadline
                await transport.send(b"ping")
                data, src = await asyncio.wait_for(loop.sock_recvfrom(peer, 100), 2)
                assert (data, src) == (b"ping", transport.local)
                await loop.sock_sendto(peer, b"pong", src)
                got = await transport.receive(2)
                assert isinstance(got, Packet)
                assert (got.data, got.src, got.dst) == (b"pong", peer.getsockname(), transport.local)
                with pytest.raises(MessageTooLarge, match="tcp"):
                    await transport.send(b"x" * (MAX_UDP_PAYLOAD + 1))
            finally:
                transport.close()

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_udp_port_unreachable_raises_on_receive() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()

    async def scenario() -> None:
        transport = await open_transport("udp", SOURCE, closed)
        try:
            await transport.send(b"anyone?")
            with pytest.raises(TargetUnreachable):
                await transport.receive(2)
        finally:
            transport.close()

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_tcp_peer_close_is_an_event() -> None:
    async def scenario() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 2\r\n\r\nhi")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        transport = await open_transport("tcp", SOURCE, server.sockets[0].getsockname()[:2])
        try:
            first = await transport.receive(2)
            assert isinstance(first, Packet) and first.data.endswith(b"\r\n\r\nhi")
            assert isinstance(await transport.receive(2), PeerClosed)
        finally:
            transport.close()
            server.close()

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_unknown_transport_and_tls_without_context() -> None:
    async def scenario() -> None:
        with pytest.raises(TransportError, match="unknown transport"):
            await open_transport("sctp", SOURCE, ("127.0.0.1", 5060))
        with pytest.raises(TransportError, match="SSLContext"):
            await open_transport("tls", SOURCE, ("127.0.0.1", 5061))

    asyncio.run(scenario())
