"""Exact payout arithmetic: integers and fractions only, never floats.

The subgraphs express a payout either as integer numerators over a denominator
(pnl-subgraph) or as BigDecimal shares (main subgraph, rounded by graph-node to 34
significant digits). Both become integer numerators over the smallest common denominator.
Every upstream value is checked for type, digits and exponent before any arithmetic, so
no value can raise anything but `MalformedPayout` or take more than microseconds.
"""

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from payout_assets.core.bounds import AnswerBounds

UINT32_MAX = 2**32 - 1
GRAPH_NODE_DIGITS = 34
MAX_OUTCOMES = 256  # the Conditional Tokens contract's limit on outcome slots
EXPECTED_VECTORS = {(1, 0), (0, 1), (1, 1)}
SHOWN_CHARS = 40  # of a bad value, in its reason

_DECIMAL = re.compile(r"[+-]?(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?(?:[eE](?P<exponent>[+-]?[0-9]+))?")


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


def shown(raw: object) -> str:
    """A bad value as a reason quotes it: its first characters, never all of it."""
    text = raw if isinstance(raw, str) else repr(raw)
    return repr(text[:SHOWN_CHARS] + ("…" if len(text) > SHOWN_CHARS else ""))


def _vector(raw: object, what: str) -> list[object]:
    if not isinstance(raw, list):
        raise MalformedPayout(f"{what} {shown(raw)} is not a list")
    if len(raw) > MAX_OUTCOMES:
        raise MalformedPayout(f"{what} has {len(raw)} outcomes; a condition has at most {MAX_OUTCOMES}")
    return raw


def _integer(raw: object, what: str, bounds: AnswerBounds) -> int:
    """A non-negative BigInt: a JSON string of ASCII digits (a JSON integer is accepted too)."""
    text = str(raw) if type(raw) is int else raw
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        raise MalformedPayout(f"{what} {shown(raw)} is not a non-negative integer")
    digits = text.lstrip("0")
    if len(digits) > bounds.max_number_digits:
        raise MalformedPayout(f"{what} has {len(digits)} digits, more than the bound of {bounds.max_number_digits}")
    return int(digits or "0")


def from_numerators(numerators: object, denominator: object, bounds: AnswerBounds = AnswerBounds()) -> Payout | None:
    """pnl-subgraph shape; None while unresolved (denominator 0, nothing paid).

    The vector is reduced by its common factor before the UInt32 test: `[2, 2] / 4` and
    `[2**32, 2**32] / 2**33` are both `[1, 1] / 2`."""
    values = [_integer(n, "numerator", bounds) for n in _vector(numerators, "payoutNumerators")]
    total = _integer(denominator, "denominator", bounds)
    if sum(values) != total:
        raise MalformedPayout(f"numerators {shown(values)} do not sum to the denominator {shown(total)}")
    if total == 0:
        return None
    common = math.gcd(total, *values)
    values, total = [value // common for value in values], total // common
    if total > UINT32_MAX:
        raise MalformedPayout(f"denominator {shown(total)} (reduced) does not fit UInt32")
    return Payout(tuple(values), total)


def _simplest_between(low: Fraction, high: Fraction) -> Fraction | None:
    """The fraction with the smallest denominator in [low, high] (0 <= low <= high), or None
    when that denominator is past UInt32. Walks the continued fraction term by term; the
    denominators grow at least like Fibonacci numbers, so this takes at most ~47 terms."""
    h_prev, h, k_prev, k = 0, 1, 1, 0  # the convergents' numerators (h) and denominators (k)
    while True:
        whole = math.floor(low)
        last = whole == low or whole + 1 <= high
        term = whole if whole == low else whole + 1 if last else whole
        h_prev, h, k_prev, k = h, term * h + h_prev, k, term * k + k_prev
        if k > UINT32_MAX:
            return None
        if last:
            return Fraction(h, k)
        low, high = 1 / (high - whole), 1 / (low - whole)


def _share(raw: object, bounds: AnswerBounds) -> Fraction:
    """A BigDecimal share: the simplest fraction that graph-node's rounding at the 34th
    significant digit (or the value's last digit, if it has more) could have turned into it.

    graph-node drops trailing zeros after rounding, so `0.5` may stand for any value within
    half a unit of its 34th digit: the rule does not depend on how many digits arrive."""
    if not isinstance(raw, str) or len(raw) > bounds.max_number_digits + 16:
        raise MalformedPayout(f"payout {shown(raw)} is not a decimal string of at most {bounds.max_number_digits} digits")
    match = _DECIMAL.fullmatch(raw)
    if match is None or not (match["whole"] or match["fraction"]):
        raise MalformedPayout(f"payout {shown(raw)} is not a decimal")
    digits = ((match["whole"] or "") + (match["fraction"] or "")).lstrip("0")
    significant = digits.rstrip("0")
    if raw.startswith("-") and significant:
        raise MalformedPayout(f"payout {shown(raw)} is not a non-negative decimal")
    if len(significant) > bounds.max_number_digits:
        raise MalformedPayout(f"payout {shown(raw)} has more than {bounds.max_number_digits} digits")
    exponent_text = match["exponent"] or "0"
    if len(exponent_text.lstrip("+-0")) > 9:
        raise MalformedPayout(f"payout {shown(raw)} has an exponent past ±{bounds.max_decimal_exponent}")
    # The power of ten of the value's last significant digit, and of its first.
    last_digit = int(exponent_text) - len(match["fraction"] or "") + (len(digits) - len(significant))
    if not significant:
        return Fraction(0)
    first_digit = last_digit + len(significant) - 1
    if abs(first_digit) > bounds.max_decimal_exponent:
        raise MalformedPayout(f"payout {shown(raw)} has an exponent past ±{bounds.max_decimal_exponent}")
    exact = Fraction(int(significant)) * Fraction(10) ** last_digit
    unit = Fraction(10) ** min(last_digit, first_digit - (GRAPH_NODE_DIGITS - 1))
    share = _simplest_between(max(exact - unit / 2, Fraction(0)), exact + unit / 2)
    return exact if share is None else share


def from_decimals(payouts: object, bounds: AnswerBounds = AnswerBounds()) -> Payout | None:
    """Main-subgraph shape; None while unresolved (payouts null or empty)."""
    if payouts is None or payouts == []:
        return None
    shares = [_share(p, bounds) for p in _vector(payouts, "payouts")]
    if sum(shares) != 1:
        raise MalformedPayout(f"payouts {shown(payouts)} do not sum to 1")
    denominator = math.lcm(*(s.denominator for s in shares))
    if denominator > UINT32_MAX:
        raise MalformedPayout(f"payouts {shown(payouts)} have no small exact vector")
    return Payout(tuple(int(s * denominator) for s in shares), denominator)
