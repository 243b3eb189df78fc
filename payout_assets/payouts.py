"""Exact payout arithmetic: integers and fractions only, never floats.

The subgraphs express a payout either as integer numerators over a denominator
(pnl-subgraph) or as BigDecimal shares (main subgraph, rounded by graph-node to 34
significant digits). Both become integer numerators over the smallest common denominator.
"""

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

UINT32_MAX = 2**32 - 1
GRAPH_NODE_DIGITS = 34
EXPECTED_VECTORS = {(1, 0), (0, 1), (1, 1)}


class MalformedPayout(ValueError):
    """The subgraph holds a value no exact payout vector explains."""


@dataclass(frozen=True)
class Payout:
    numerators: tuple[int, ...]
    denominator: int

    @property
    def winning_index(self) -> int:
        """Index of the first maximum numerator, as the seed defined it."""
        return self.numerators.index(max(self.numerators))


def _integer(raw: object, what: str) -> int:
    text = str(raw)
    if not text.isascii() or not text.isdigit():
        raise MalformedPayout(f"{what} {text[:40]!r} is not a non-negative integer")
    value = int(text)
    if value > UINT32_MAX:
        raise MalformedPayout(f"{what} {text[:40]} does not fit UInt32")
    return value


def from_numerators(numerators: list[object], denominator: object) -> Payout | None:
    """pnl-subgraph shape; None while unresolved (denominator 0, nothing paid)."""
    values = [_integer(n, "numerator") for n in numerators]
    total = _integer(denominator, "denominator")
    if sum(values) != total:
        raise MalformedPayout(f"numerators {values} do not sum to the denominator {total}")
    if total == 0:
        return None
    return Payout(tuple(values), total)


def _simplest_between(low: Fraction, high: Fraction) -> Fraction:
    """The fraction with the smallest denominator in [low, high] (0 <= low <= high)."""
    whole = math.floor(low)
    if whole == low or whole + 1 <= high:
        return Fraction(whole if whole == low else whole + 1)
    return whole + 1 / _simplest_between(1 / (high - whole), 1 / (low - whole))


def _share(raw: object) -> Fraction:
    """A BigDecimal share; one with graph-node's full 34 digits may be a rounded fraction."""
    text = str(raw)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MalformedPayout(f"payout {text[:40]!r} is not a decimal") from None
    if not value.is_finite() or value < 0:
        raise MalformedPayout(f"payout {text[:40]!r} is not a non-negative decimal")
    exact = Fraction(value)
    # Decimal.normalize() would round to the context's 28 digits: strip zeros by hand.
    _, digit_tuple, exponent = value.as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    significant = digits.rstrip("0")
    if len(significant) < GRAPH_NODE_DIGITS:
        return exact
    exponent += len(digits) - len(significant)
    half_unit = Fraction(1, 2) * Fraction(10) ** exponent
    return _simplest_between(max(exact - half_unit, Fraction(0)), exact + half_unit)


def from_decimals(payouts: list[object] | None) -> Payout | None:
    """Main-subgraph shape; None while unresolved (payouts null or empty)."""
    if not payouts:
        return None
    shares = [_share(p) for p in payouts]
    if sum(shares) != 1:
        raise MalformedPayout(f"payouts {[str(p) for p in payouts]} do not sum to 1")
    denominator = math.lcm(*(s.denominator for s in shares))
    if denominator > UINT32_MAX:
        raise MalformedPayout(f"payouts {[str(p) for p in payouts]} have no small exact vector")
    return Payout(tuple(int(s * denominator) for s in shares), denominator)
