import pytest

from payout_assets.payouts import MalformedPayout, Payout, from_decimals, from_numerators

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
        ([str(2**32), "0"], str(2**32), "UInt32"),
    ],
)
def test_malformed_numerators(numerators, denominator, reason):
    with pytest.raises(MalformedPayout, match=reason):
        from_numerators(numerators, denominator)


@pytest.mark.parametrize(
    ("payouts", "reason"),
    [
        (["0.5", "0.6"], "do not sum to 1"),
        (["-0.5", "1.5"], "non-negative"),
        (["NaN", "1"], "non-negative"),
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
