"""CLI: serve the local chain in its own process (demo and benchmark).

    python -m chain_replica --seeds data/chain_seeds.csv --rate-limit 50 --port-file /tmp/url

Binds loopback; `--port-file` receives the URL once the port listens (after genesis: about
16 s for 20,000 resolved conditions).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from subgraph_replica.server import serve_until_stopped, start_site

from .chain import LocalChain
from .fixtures import load_resolutions, load_seeds
from .server import ChainSettings, create_app


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chain_replica", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=Path, help="seed CSV: conditions held in genesis storage")
    parser.add_argument("--resolve", type=Path, help="resolution CSV: conditions resolved through transactions after genesis")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--rate-limit", type=int, default=None, help="accepted requests per window")
    parser.add_argument("--window", type=float, default=10.0, help="rate-limit window in seconds")
    parser.add_argument("--max-batch", type=int, default=None, help="calls per JSON-RPC batch")
    parser.add_argument("--max-log-blocks", type=int, default=None, help="blocks per eth_getLogs")
    parser.add_argument("--call-error-rate", type=float, default=0.0, help="share of calls answered with an error")
    parser.add_argument("--port-file", type=Path, help="write the URL here once listening")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    chain = LocalChain(load_seeds(args.seeds) if args.seeds else ())
    for planned in load_resolutions(args.resolve) if args.resolve else ():
        chain.resolve(planned.question_id, planned.numerators, planned.timestamp)
    settings = ChainSettings(rate_limit=args.rate_limit, window_seconds=args.window, max_batch=args.max_batch,
                             max_log_blocks=args.max_log_blocks, call_error_rate=args.call_error_rate)
    runner, port = await start_site(create_app(chain, settings), args.host, args.port)
    await serve_until_stopped(runner, f"http://{args.host}:{port}/", args.port_file)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
