"""The model's AMQP side: what Kazoo's ecallmgr publishes that the SBC configuration consumes.

ecallmgr advertises its node on the ``nodes`` fanout exchange every few seconds (``Event-Category: nodes``,
``Event-Name: advertise``) with the FreeSWITCH servers it controls under ``Media-Servers``; nodes-role.cfg
(``event_route[kazoo:consumer-event-nodes-advertise]`` -> CHECK_MEDIA_SERVERS) reads each interface's
``info.url`` and ``info.sip-ip`` and, for a media server it has not seen, inserts it into the dispatcher
table (KZQ_CHECK_MEDIA_SERVER_INSERT). pika publishes it here, as ecallmgr's kz_amqp does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable

from harness.kazoo_sbc.stackdata import MEDIA_PROFILE

NODES_EXCHANGE = "nodes"


def advertisement(
    node: str,
    media: Iterable[tuple[str, tuple[str, int]]],
    *,
    zone: str = "local",
    expires_ms: int = 15000,
    startup: int | None = None,
) -> dict[str, object]:
    """An ecallmgr ``nodes``/``advertise`` payload; ``media`` is (FreeSWITCH node name, (ip, port))."""
    started = startup if startup is not None else int(time.time())
    servers = {
        name: {
            "Startup": started,
            "Instance-UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}@{ip}:{port}")),
            "Interfaces": {
                MEDIA_PROFILE: {"info": {"url": f"sip:mod_sofia@{ip}:{port}", "sip-ip": ip}},
            },
        }
        for name, (ip, port) in media
    }
    return {
        "Event-Category": "nodes",
        "Event-Name": "advertise",
        "App-Name": "ecallmgr",
        "App-Version": "4.3.0",
        "Node": node,
        "Msg-ID": uuid.uuid4().hex,
        "Expires": expires_ms,
        "AMQP-Broker-Zone": zone,
        "Media-Servers": servers,
    }


def nodes_queue(hostname: str) -> str:
    """The queue the SBC's nodes role consumes the ``nodes`` exchange from (kazoo-bindings.cfg)."""
    return f"nodes-{hostname}"


def wait_for_consumer(amqp_url: str, queue: str, *, timeout: float = 30.0) -> int:
    """Until ``queue`` exists and has a consumer (the SBC's AMQP worker subscribed); its consumer count.
    Kamailio answers OPTIONS before its kazoo module has bound its queues, and a fanout exchange drops
    what no queue is bound to yet: publish only after this."""
    import pika
    import pika.exceptions

    params = pika.URLParameters(amqp_url)
    params.socket_timeout = min(timeout, 5.0)
    deadline = time.monotonic() + timeout
    connection = pika.BlockingConnection(params)
    try:
        while True:
            channel = connection.channel()
            try:
                consumers = int(channel.queue_declare(queue, passive=True).method.consumer_count)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                consumers = 0
            if consumers > 0:
                return consumers
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no consumer on AMQP queue {queue!r} within {timeout} s")
            time.sleep(0.1)  # pacing the check: the broker does not announce new consumers
    finally:
        connection.close()


def publish_advertisement(amqp_url: str, payload: dict[str, object], *, timeout: float = 5.0) -> None:
    """Publish one advertisement on the ``nodes`` exchange (declared by the subscribers, fanout)."""
    import pika
    import pika.exceptions

    params = pika.URLParameters(amqp_url)
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    deadline = time.monotonic() + timeout
    connection = pika.BlockingConnection(params)
    try:
        # the SBC's consumers declare the exchange when they subscribe, a moment after Kamailio answers
        while True:
            channel = connection.channel()
            try:
                channel.exchange_declare(NODES_EXCHANGE, exchange_type="fanout", passive=True)
                break
            except pika.exceptions.ChannelClosedByBroker:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)  # pacing the check: the broker does not announce new exchanges
        channel.basic_publish(
            exchange=NODES_EXCHANGE,
            routing_key="",
            body=json.dumps(payload).encode(),
            properties=pika.BasicProperties(content_type="application/json"),
        )
    finally:
        connection.close()
