"""A local Polygon node for the Conditional Tokens contract: the real bytecode, served over JSON-RPC.

Tests, the demo and the benchmark point `POLYGON_RPC_URL` at it. It runs the compiled
contract Gnosis published (fetched by `make install`) in eth-tester's py-evm backend,
holds real Polymarket ids in its genesis storage, and resolves further conditions through
the contract's own transactions so their `ConditionResolution` events exist.
"""

from .chain import LocalChain
from .contract import CTF_ADDRESS, SeededCondition, load_artifact
from .fixtures import PlannedResolution, load_resolutions, load_seeds, seeds_from_rows, write_resolutions, write_seeds
from .runner import ChainServer
from .server import ChainSettings, create_app

__all__ = [
    "CTF_ADDRESS",
    "ChainServer",
    "ChainSettings",
    "LocalChain",
    "PlannedResolution",
    "SeededCondition",
    "create_app",
    "load_artifact",
    "load_resolutions",
    "load_seeds",
    "seeds_from_rows",
    "write_resolutions",
    "write_seeds",
]
