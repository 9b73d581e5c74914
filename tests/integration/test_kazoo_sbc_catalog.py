"""The whole scenario catalog passes through Kazoo's own Kamailio configuration (the kazoo-sbc target), for
every Kazoo release the harness knows (harness.kazoo.release), in a subprocess like the lab's catalog test.

Kept cheap for CI: one private RabbitMQ for the module, shared by every run through KAZOO_SBC_AMQP_URL (each
SBC has its own host name, so its own queues), and the catalog split over two pytest workers, each with
its own model and Kazoo Kamailio in front of it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from catalog_helpers import RELEASE_SKIP, run_catalog, tail, unexpected_skips

from harness.kazoo.release import RELEASE_NAMES
from harness.kazoo.roles import BROKEN_ON_DEBIAN
from harness.kazoo_sbc.launcher import kazoo_sbc_available
from harness.kazoo_sbc.rabbit import RabbitBroker
from harness.targets.kazoo_sbc import AMQP_ENV

MISSING = kazoo_sbc_available()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=f"the kazoo-sbc target needs: {MISSING}"),
]


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitBroker]:
    with RabbitBroker() as started:
        yield started


@pytest.mark.parametrize("release", RELEASE_NAMES)
def test_catalog_passes_through_kazoos_own_configuration(broker: RabbitBroker, release: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAZOO_SBC_CONFIG"} | {AMQP_ENV: broker.url}
    done, output = run_catalog("kazoo-sbc", release, "-n", "2", env=env)
    assert done.returncode == 0, (
        f"the catalog on kazoo-sbc {release} exited {done.returncode}:\n{tail(output)}"
    )
    assert " passed" in tail(output, 3), tail(output)
    # skipped: a scenario for the other release, and the rate limiter's (Debian's kazoo module cannot run
    # it); the antiflood scenarios run, on a twin of the configuration with the role switched on
    allowed = (RELEASE_SKIP, BROKEN_ON_DEBIAN["rate_limiter"])
    assert not unexpected_skips(output, allowed), unexpected_skips(output, allowed)
