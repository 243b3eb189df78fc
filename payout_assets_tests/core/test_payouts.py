import time

import pytest

from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.payouts import MalformedPayout, Payout, from_decimals, from_numerators

THIRD = "0.3333333333333333333333333333333333"
TWO_THIRDS = "0.6666666666666666666666666666666667"


@pytest.mark.parametrize(
    ("numerators", "denominator", "expected"),
    [
        (["1", "0"], "1", Payout((1, 0), 1)),
        (["0", "1"], "1", Payout((0, 1), 1)),
        (["1", "1"], "2", Payout((1, 1), 2)),
        ([], "0", None),
        (["0", "0"], "0", None),
        (["2", "2"], "4", Payout((1, 1), 2)),  # reduced: the smallest common denominator
        ([str(2**32), str(2**32)], str(2**33), Payout((1, 1), 2)),  # reduced before the UInt32 test
        ([str(2**32), "0"], str(2**32), Payout((1, 0), 1)),
        (["0001", "0"], "1", Payout((1, 0), 1)),
        ([str(2**32 - 2), "1"], str(2**32 - 1), Payout((2**32 - 2, 1), 2**32 - 1)),  # the largest UInt32 fits
    ],
)
def test_integer_numerators(numerators, denominator, expected):
    assert from_numerators(numerators, denominator) == expected


@pytest.mark.parametrize(
    ("payouts", "expected"),
    [
        (["1", "0"], Payout((1, 0), 1)),
        (["0.5", "0.5"], Payout((1, 1), 2)),
        (["0.54", "0.46"], Payout((27, 23), 50)),
        ([THIRD, TWO_THIRDS], Payout((1, 2), 3)),
        ([THIRD, THIRD, THIRD], Payout((1, 1, 1), 3)),
        (None, None),
        ([], None),
    ],
)
def test_decimal_payouts_become_exact_fractions(payouts, expected):
    assert from_decimals(payouts) == expected


@pytest.mark.parametrize(
    ("payouts", "expected"),
    [
        # graph-node rounded these at the 34th digit, then dropped the trailing zero: 33 digits.
        (["0.380952380952380952380952380952381", "0.619047619047619047619047619047619"], Payout((8, 13), 21)),
        (["0.956521739130434782608695652173913", "0.04347826086956521739130434782608696"], Payout((22, 1), 23)),
        (["0.962962962962962962962962962962963", "0.03703703703703703703703703703703704"], Payout((26, 1), 27)),
    ],
)
def test_rounded_shares_with_fewer_than_34_digits_are_recovered(payouts, expected):
    assert from_decimals(payouts) == expected


def test_a_share_past_34_digits_is_rounded_at_its_own_last_digit():
    assert from_decimals(["0." + "3" * 40, "0." + "6" * 39 + "7"]) == Payout((1, 2), 3)


def test_one_seventh_survives_graph_node_rounding():
    assert from_decimals(["0.1428571428571428571428571428571429", "0.8571428571428571428571428571428571"]) == Payout(
        (1, 6), 7
    )


@pytest.mark.parametrize(
    ("numerators", "denominator", "reason"),
    [
        (["1", "0"], "2", "do not sum"),
        (["1", "0"], "0", "do not sum"),
        (["-1", "2"], "1", "non-negative integer"),
        (["1.5", "0"], "1.5", "non-negative integer"),
        (["abc", "1"], "1", "non-negative integer"),
        ([str(2**32), "1"], str(2**32 + 1), "UInt32"),
        (["²", "1"], "1", "non-negative integer"),  # str.isdigit() accepts it, int() does not
        (["+1", "0"], "1", "non-negative integer"),
        ([1.0, 0], "1", "non-negative integer"),
        ([True, False], "1", "non-negative integer"),
        (["9" * 5000, "0"], "9" * 5000, "5000 digits"),  # past Python's int-string limit
        ("10", "1", "not a list"),  # a string would otherwise be read digit by digit
        ({"1": 1}, "1", "not a list"),
        (["1"] * 257, "257", "at most 256"),
        (["1", "0"], None, "non-negative integer"),
        (None, "0", "not a list"),
    ],
)
def test_malformed_numerators(numerators, denominator, reason):
    with pytest.raises(MalformedPayout, match=reason):
        from_numerators(numerators, denominator)


@pytest.mark.parametrize(
    ("payouts", "reason"),
    [
        (["0.5", "0.6"], "do not sum to 1"),
        (["0.5", "0.25"], "do not sum to 1"),  # short of 1 too: [2, 1] / 3 is not what it says
        (["-0.5", "1.5"], "non-negative"),
        (["NaN", "1"], "not a decimal"),
        (["Infinity", "0"], "not a decimal"),
        (["", "1"], "not a decimal"),
        (["1e", "0"], "not a decimal"),
        ([0.5, 0.5], "not a decimal string"),  # JSON numbers are floats: never exact
        (["0." + "3" * 3000, "0." + "6" * 2999 + "7"], "not a decimal string of at most 100 digits"),
        (["0." + "3" * 101, "0." + "6" * 100 + "7"], "more than 100 digits"),
        (["1e-100000000", "1"], "exponent past"),
        (["1e+999999999999", "0"], "exponent past"),
        ("0.5", "not a list"),
        ({"a": "1"}, "not a list"),
        (["x", "1"], "not a decimal"),
        (["0.1234567890123456789012345678901234", "0.8765432109876543210987654321098766"], "no small exact vector"),
    ],
)
def test_malformed_decimals(payouts, reason):
    with pytest.raises(MalformedPayout, match=reason):
        from_decimals(payouts)


def test_winning_index_is_the_first_maximum():
    assert Payout((0, 1), 1).winning_index == 1
    assert Payout((1, 1), 2).winning_index == 0
    assert Payout((2, 5, 5), 12).winning_index == 1


@pytest.mark.parametrize(
    "payouts",
    [["1e-100000000", "1"], ["1e100000000", "0"], ["0." + "1" * 100, "0.9"], ["1" + "0" * 99 + "e-99", "0"], ["0." + "0" * 99 + "1", "1"]],
)
def test_no_value_within_or_past_the_bounds_takes_long(payouts):
    started = time.perf_counter()
    try:
        from_decimals(payouts)
    except MalformedPayout:
        pass
    assert time.perf_counter() - started < 0.05


def test_the_digit_and_exponent_bounds_are_settings():
    tight = AnswerBounds(max_number_digits=5, max_decimal_exponent=3)
    assert from_numerators(["12345", "0"], "12345", tight) == Payout((1, 0), 1)
    with pytest.raises(MalformedPayout, match="6 digits"):
        from_numerators(["123456", "0"], "123456", tight)
    assert from_decimals(["0.125", "0.875"], tight) == Payout((1, 7), 8)
    with pytest.raises(MalformedPayout, match="exponent past ±3"):
        from_decimals(["0.0001", "0.9999"], tight)
