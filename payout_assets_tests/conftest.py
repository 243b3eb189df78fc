"""Fixtures: a truth, the replica serving it, resources pointing at both, a scripted upstream."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from payout_assets_tests.support import Truth, make_resources, make_truth
from payout_assets_tests.support.processes import ScriptedUpstream
from subgraph_replica import ReplicaServer


@pytest.fixture
def truth() -> Truth:
    return make_truth(3000)


@pytest.fixture
def replica(truth: Truth) -> Iterator[ReplicaServer]:
    with ReplicaServer(truth.rows.values()) as server:
        yield server


@pytest.fixture
def resources(tmp_path: Path, replica: ReplicaServer, truth: Truth) -> dict:
    return make_resources(tmp_path, replica.url, truth.ids)


@pytest.fixture(scope="module")
def scripted_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as upstream:
        yield upstream
