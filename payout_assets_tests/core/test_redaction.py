"""Secrets inside endpoint URLs never reach a log line, a metadata value or a reason."""

import asyncio

import pytest

from payout_assets.core.bounds import AnswerBounds
from payout_assets.checks.preflight import goldsky_ready
from payout_assets.core.redaction import redact_url, rpc_display_url, rpc_url_secrets, url_secrets
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.resources.goldsky_client import PermanentFailure
from subgraph_replica import ConditionRow, ReplicaServer


@pytest.mark.parametrize(
    ("url", "redacted", "secrets"),
    [
        ("https://gateway.thegraph.com/api/0123abcd/subgraphs/id/Qm1", "https://gateway.thegraph.com/api/***/subgraphs/id/Qm1", {"0123abcd"}),
        ("https://user:p%40ss@host.example:8443/gn", "https://***@host.example:8443/gn", {"user", "p%40ss", "p@ss", "p%2540ss"}),
        ("https://tok3n@host.example/gn", "https://***@host.example/gn", {"tok3n"}),
        ("https://host.example/gn?api_key=k1&x=2&Token=k2", "https://host.example/gn?api_key=***&x=2&Token=***", {"k1", "k2"}),
        ("https://api.goldsky.com/api/public/project_x/subgraphs/pnl/0.0.14/gn", "https://api.goldsky.com/api/public/project_x/subgraphs/pnl/0.0.14/gn", set()),
        ("http://[::1]:8000/subgraphs/name/pnl", "http://[::1]:8000/subgraphs/name/pnl", set()),
    ],
)
def test_urls_lose_user_info_and_keys(url, redacted, secrets):
    assert redact_url(url) == redacted
    assert set(url_secrets(url)) == secrets  # each secret raw, decoded and encoded: nothing else


@pytest.mark.parametrize(
    ("url", "shown", "secret"),
    [
        ("https://polygon-mainnet.g.alchemy.com/v2/abc123", "https://polygon-mainnet.g.alchemy.com/…", "abc123"),
        ("https://rpc.example/?apikey=K3y456", "https://rpc.example/…", "K3y456"),  # a query alone still shows it was cut
        ("https://rpc.example:8545", "https://rpc.example:8545/", None),
    ],
)
def test_rpc_urls_show_scheme_and_host_only_and_every_hidden_part_of_six_characters_is_a_secret(url, shown, secret):
    assert rpc_display_url(url) == shown
    assert secret is None or secret in rpc_url_secrets(url)


def test_an_unparseable_url_is_never_shown():
    assert redact_url("https://user:hunter2@[::1") == "<an unparseable URL>"


def test_reasons_lose_every_secret_even_when_cut():
    bounds = AnswerBounds(max_reason_chars=40, secrets=("s3cret-key-0123456789",))
    assert bounds.reason("x" * 30 + "s3cret-key-0123456789" + "y" * 50) == "x" * 30 + "***" + "y" * 6 + "…"
    assert len(bounds.reason("z" * 10_000)) == 40


def scratch_files(tmp_path) -> PayoutFiles:
    return PayoutFiles(input_ids_path=str(tmp_path / "ids.txt"), shards_dir=str(tmp_path / "shards"))


def test_goldsky_ready_metadata_and_errors_carry_no_key(tmp_path):
    key = "k3y0123456789"
    rows = [ConditionRow("0x" + "a" * 64, ("1", "0"), "1", "", 1)]
    with ReplicaServer(rows, require_token="other") as replica:
        url = replica.url.replace("/subgraphs/", f"/api/{key}/subgraphs/").replace("http://", f"http://user:{key}@")
        result = goldsky_ready(GoldskyResource(url=url, max_attempts=1), scratch_files(tmp_path), max_lag_hours=6, run_id="r")
        with pytest.raises(PermanentFailure) as failure:

            async def discover():
                async with GoldskyResource(url=url, max_attempts=1).client() as client:
                    await client.discover()

            asyncio.run(discover())
    assert not result.passed and "HTTP 401" in result.metadata["problem"].value
    assert result.metadata["endpoint"].value == redact_url(url) and "/api/***/" in result.metadata["endpoint"].value
    assert key not in str(result.metadata) and key not in str(failure.value)


def test_an_unreachable_gateway_url_is_reported_without_its_key(tmp_path):
    key = "k3y0123456789"
    url = f"http://127.0.0.1:9/api/{key}/subgraphs/id/Qm?api_key={key}"
    result = goldsky_ready(GoldskyResource(url=url, max_attempts=1), scratch_files(tmp_path), max_lag_hours=6, run_id="r")
    assert not result.passed and key not in str(result.metadata)
