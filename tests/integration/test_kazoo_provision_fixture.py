"""The kazoo_provision fixture on the plugin's session target (the embedded model)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.kazoo.access import esl_api
from harness.kazoo.couch import CouchClient
from harness.kazoo.provision import Provisioner, canonical
from harness.targets.target import Target


@pytest.fixture
def ecallmgr_before(kazoo: Target) -> Iterator[str]:
    """The ACL document before the provisioning test; checked again after its teardown."""
    access = kazoo.stack
    assert access.couch_url
    with CouchClient(access.couch_url) as couch:
        before = canonical(couch.get_doc("system_config", "ecallmgr"))
        yield before
        # runs after kazoo_provision's teardown (fixtures tear down in reverse order)
        assert canonical(couch.get_doc("system_config", "ecallmgr")) == before


def test_fixture_provisions_and_restores(
    ecallmgr_before: str, kazoo_provision: Provisioner, kazoo: Target
) -> None:
    kazoo_provision.acl_entry("127.0.0.88/32")
    access = kazoo.stack
    assert access.esl is not None
    assert esl_api(access.esl, "acl 127.0.0.88 trusted") == ["true"]
