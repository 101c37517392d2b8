"""Wilson and Newcombe intervals against the published values, and their refusals."""

import pytest

from pipeline.stats import newcombe, wilson


@pytest.mark.parametrize(
    ("k", "n", "lower", "upper"),
    [  # Newcombe, "Two-sided confidence intervals for the single proportion", Stat Med 1998, Table II
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_matches_published_intervals(k, n, lower, upper):
    interval = wilson(k, n, 0.95)
    assert interval.value == pytest.approx(k / n)
    assert (interval.lower, interval.upper) == (pytest.approx(lower, abs=5e-5), pytest.approx(upper, abs=5e-5))
    assert interval.method == "wilson"


def test_wilson_is_exact_at_the_edges_and_widens_with_confidence():
    assert wilson(0, 7).lower == 0.0 and wilson(7, 7).upper == 1.0
    narrow, wide = wilson(30, 100, 0.8), wilson(30, 100, 0.99)
    assert wide.lower < narrow.lower < 0.3 < narrow.upper < wide.upper


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2", "lower", "upper"),
    [  # Newcombe, "Interval estimation for the difference between independent proportions", Stat Med 1998,
        # Table II, method 10 (hybrid score), examples (a)-(h)
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0),
        (10, 10, 0, 10, 0.6075, 1.0),
    ],
)
def test_newcombe_matches_published_method_10(k1, n1, k2, n2, lower, upper):
    interval = newcombe(k1, n1, k2, n2, 0.95)
    assert interval.value == pytest.approx(k1 / n1 - k2 / n2)
    assert (interval.lower, interval.upper) == (pytest.approx(lower, abs=5e-5), pytest.approx(upper, abs=5e-5))
    assert interval.method == "newcombe"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, 0), "n must be > 0"),
        ((0, -3), "n must be > 0"),
        ((-1, 10), r"k must be in \[0, n\]"),
        ((11, 10), r"k must be in \[0, n\]"),
        ((2.5, 10), "k must be an integer"),
        ((True, 10), "k must be an integer"),
        ((1, float("nan")), "n must be an integer"),
        ((1, 10, 0.0), r"confidence must be a number in \(0, 1\)"),
        ((1, 10, 1.0), r"confidence must be a number in \(0, 1\)"),
        ((1, 10, 95), r"confidence must be a number in \(0, 1\)"),
        ((1, 10, float("nan")), r"confidence must be a number in \(0, 1\)"),
    ],
)
def test_wilson_refuses_bad_input_with_the_rule(args, message):
    with pytest.raises(ValueError, match=message):
        wilson(*args)


def test_newcombe_refuses_a_bad_sample():
    with pytest.raises(ValueError, match=r"k must be in \[0, n\]"):
        newcombe(5, 10, 11, 10)
