"""Local replica of a Polymarket subgraph as graph-node on Goldsky serves it.

Tests and the benchmark run against it instead of the real endpoint, so it is
strict where graph-node is strict (`first` default 100 and cap 1000, exact
id matching, string BigInt/BigDecimal) and misbehaves on demand (sliding-window
429s, latency, 5xx, dropped connections, indexing errors, and the hostile answers of
HOSTILE_KINDS: HTML pages with status 200, oversized bodies, corrupt values, header echoes).
"""

from .faults import FAULT_KINDS, HOSTILE_KINDS, FaultMix
from .fixtures import ConditionRow, load_fixture, synthesize_truth, write_fixture
from .runner import ReplicaServer
from .schema import big_decimal_ratio, build_replica_schema
from .server import create_app
from .state import ReplicaSettings

__all__ = [
    "FAULT_KINDS",
    "HOSTILE_KINDS",
    "ConditionRow",
    "FaultMix",
    "ReplicaServer",
    "ReplicaSettings",
    "big_decimal_ratio",
    "build_replica_schema",
    "create_app",
    "load_fixture",
    "synthesize_truth",
    "write_fixture",
]
