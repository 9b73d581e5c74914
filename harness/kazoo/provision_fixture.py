"""The ``kazoo_provision`` pytest fixture: a :class:`Provisioner` on the session's target, restored at
teardown whatever the test did. Skips (with the reason) on targets without ``allow_provisioning``.

Registered by the plugin (``harness.pytest_plugin`` imports it); usable directly as
``from harness.kazoo.provision_fixture import kazoo_provision``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.kazoo.provision import Provisioner
from harness.scenario.safety import UnsafeTarget
from harness.scenario.target import Target


@pytest.fixture
def kazoo_provision(kazoo: Target) -> Iterator[Provisioner]:
    """Temporary ACL entries, numbers, accounts and callflows on the target under test::

    def test_new_carrier(kazoo_provision, carrier):
        kazoo_provision.acl_entry("127.0.0.77/32")
        ...
    """
    try:
        provisioner = Provisioner.for_target(kazoo)
    except UnsafeTarget as exc:
        pytest.skip(str(exc))
    with provisioner:
        yield provisioner
