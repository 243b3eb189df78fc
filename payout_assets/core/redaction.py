"""Secrets inside endpoint URLs: user-info and API keys in the positions gateways put them.

A gateway URL may carry its key (`https://gateway.thegraph.com/api/<key>/subgraphs/id/…`,
`https://user:key@host/…`, `…?api_key=<key>`). Every URL that reaches a log line, a metadata
value or an error message goes through `redact_url`, and every reason through a text
filter that knows `url_secrets`.
"""

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

REDACTED = "***"
KEY_AFTER_SEGMENT = "api"  # /api/<key>/…; Goldsky's own /api/public/… and /api/private/… carry none
NOT_KEYS = {"public", "private"}
KEY_PARAMETER = re.compile(r"key|token|secret|auth|pass|signature", re.IGNORECASE)


def _key_segment(segments: list[str]) -> int | None:
    for index, segment in enumerate(segments[:-1]):
        if segment == KEY_AFTER_SEGMENT and segments[index + 1] and segments[index + 1] not in NOT_KEYS:
            return index + 1
    return None


def url_secrets(url: str) -> tuple[str, ...]:
    """The secret parts of `url`, raw and percent-decoded, longest first."""
    try:
        parts = urlsplit(url)
        found = [parts.username or "", parts.password or ""]
    except ValueError:  # an unparseable URL: nothing of it is shown anyway (see redact_url)
        return (url,) if url else ()
    segments = parts.path.split("/")
    if (index := _key_segment(segments)) is not None:
        found.append(segments[index])
    found += [value for name, value in parse_qsl(parts.query, keep_blank_values=True) if KEY_PARAMETER.search(name)]
    variants = {variant for secret in found if secret for variant in (secret, unquote(secret), quote(secret, safe=""))}
    return tuple(sorted(variants, key=len, reverse=True))


def redact_url(url: str) -> str:
    """`url` with user-info, a path key and key-like query values replaced by `***`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<an unparseable URL>"
    netloc = (f"{REDACTED}@" if "@" in parts.netloc else "") + (f"[{host}]" if ":" in host else host) + port
    segments = parts.path.split("/")
    if (index := _key_segment(segments)) is not None:
        segments[index] = REDACTED
    query = urlencode(
        [(name, REDACTED if KEY_PARAMETER.search(name) else value) for name, value in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, "/".join(segments), query, ""))


def rpc_display_url(url: str) -> str:
    """Scheme and host only: JSON-RPC providers put their key in the path (`/v2/<key>`,
    `/polygon/<key>`) as often as in the query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<an unparseable URL>"
    rest = "/…" if parts.path.strip("/") or parts.query or parts.username else "/"
    return f"{parts.scheme}://{host}{port}{rest}"


def rpc_url_secrets(url: str) -> list[str]:
    """Every part of `url` that `rpc_display_url` hides and that is long enough to be a key."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    pieces = [parts.username or "", parts.password or "", *parts.path.split("/"), *parts.query.replace("=", "&").split("&")]
    return sorted({url, *(piece for piece in pieces if len(piece) >= 6)}, key=len, reverse=True)
