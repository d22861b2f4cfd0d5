"""Tests for optiyield.yield_: binomial intervals, yield estimates, spec limits and yield tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import beta, norm

from optiyield.yield_ import (
    SpecLimit,
    YieldEstimate,
    clopper_pearson_interval,
    interval_narrower_than,
    wilson_interval,
    yield_table,
)


def _wilson_closed_form(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Textbook Wilson score interval, written out independently of the implementation."""
    z = norm.ppf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# --------------------------------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------------------------------


def test_wilson_known_value() -> None:
    # 81 successes in 263 trials: the classic example, 95 % Wilson interval (0.2553, 0.3662).
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    ref = _wilson_closed_form(81, 263, 0.95)
    assert low == pytest.approx(ref[0], abs=1e-12)
    assert high == pytest.approx(ref[1], abs=1e-12)


@pytest.mark.parametrize(("k", "n", "conf"), [(1, 10, 0.9), (355, 500, 0.95), (999, 1000, 0.99), (5, 7, 0.5)])
def test_wilson_matches_closed_form(k: int, n: int, conf: float) -> None:
    assert wilson_interval(k, n, conf) == pytest.approx(_wilson_closed_form(k, n, conf), abs=1e-12)


def test_wilson_boundaries() -> None:
    z2 = norm.ppf(0.975) ** 2
    low, high = wilson_interval(0, 20)
    assert low == 0.0
    assert high == pytest.approx(z2 / (20 + z2), rel=1e-12)
    low, high = wilson_interval(20, 20)
    assert high == 1.0
    assert low == pytest.approx(20 / (20 + z2), rel=1e-12)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert clopper_pearson_interval(0, 0) == (0.0, 1.0)


def test_clopper_pearson_against_beta_quantiles() -> None:
    k, n = 81, 263
    low, high = clopper_pearson_interval(k, n)
    assert low == pytest.approx(beta.ppf(0.025, k, n - k + 1), rel=1e-9)
    assert high == pytest.approx(beta.ppf(0.975, k + 1, n - k), rel=1e-9)
    # 0/10: upper bound 1 - (alpha/2)^(1/n); 10/10: lower bound (alpha/2)^(1/n)
    assert clopper_pearson_interval(0, 10) == pytest.approx((0.0, 1 - 0.025**0.1), rel=1e-9)
    assert clopper_pearson_interval(10, 10) == pytest.approx((0.025**0.1, 1.0), rel=1e-9)
    # exact interval is wider than Wilson here
    w = wilson_interval(k, n)
    assert high - low > w[1] - w[0]


@pytest.mark.parametrize(
    ("args", "match"),
    [((-1, 10), "passed"), ((11, 10), "exceeds"), ((1, -2), "n must"), ((1.5, 10), "passed")],
)
def test_interval_rejects_bad_counts(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        wilson_interval(*args)


@pytest.mark.parametrize("conf", [0.0, 1.0, 95.0])
def test_interval_rejects_bad_confidence(conf: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        clopper_pearson_interval(3, 10, conf)


def test_wilson_coverage_synthetic() -> None:
    p, n, reps = 0.7, 200, 2000
    rng = np.random.default_rng(20240601)
    hits = 0
    for k in rng.binomial(n, p, size=reps):
        low, high = wilson_interval(int(k), n)
        hits += low <= p <= high
    coverage = hits / reps
    assert 0.93 <= coverage <= 0.97, coverage


@st.composite
def _counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=1, max_value=1_000_000))
    k = draw(st.integers(min_value=0, max_value=n))
    return k, n


@settings(deadline=None, max_examples=200)
@given(_counts(), st.floats(min_value=0.5, max_value=0.999))
def test_wilson_contains_estimate_and_is_in_unit_interval(counts: tuple[int, int], conf: float) -> None:
    k, n = counts
    low, high = wilson_interval(k, n, conf)
    assert 0.0 <= low <= k / n <= high <= 1.0


@settings(deadline=None, max_examples=200)
@given(_counts(), st.integers(min_value=2, max_value=50))
def test_wilson_narrows_as_n_grows(counts: tuple[int, int], m: int) -> None:
    k, n = counts
    small = wilson_interval(k, n)
    large = wilson_interval(k * m, n * m)
    assert large[1] - large[0] < small[1] - small[0]


# --------------------------------------------------------------------------------------------------
# YieldEstimate
# --------------------------------------------------------------------------------------------------


def test_yield_estimate_str_and_width() -> None:
    est = YieldEstimate.from_counts(355, 500)
    assert str(est) == "71.0 % [66.9, 74.8] (355/500, 95 % Wilson)"
    assert est.value == 0.71
    assert est.width == pytest.approx(est.high - est.low)
    cp = YieldEstimate.from_counts(355, 500, confidence=0.99, method="clopper-pearson")
    assert str(cp).endswith("(355/500, 99 % Clopper-Pearson)")
    assert cp.width > est.width


def test_yield_estimate_empty() -> None:
    est = YieldEstimate.from_counts(0, 0)
    assert math.isnan(est.value)
    assert (est.low, est.high, est.width) == (0.0, 1.0, 1.0)
    assert str(est) == "n/a [0.0, 100.0] (0/0, 95 % Wilson)"


def test_yield_estimate_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="method"):
        YieldEstimate.from_counts(1, 2, method="agresti")  # type: ignore[arg-type]


def test_interval_narrower_than() -> None:
    est = YieldEstimate.from_counts(355, 500)  # width ≈ 0.079
    assert interval_narrower_than(est, 0.08)
    assert not interval_narrower_than(est, 0.07)
    assert not interval_narrower_than(YieldEstimate.from_counts(0, 0), 1.0)


# --------------------------------------------------------------------------------------------------
# SpecLimit
# --------------------------------------------------------------------------------------------------


def test_spec_limit_inclusive_and_nan() -> None:
    v = np.array([0.9, 1.0, 1.5, 2.0, 2.1, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(
        SpecLimit("g", 1.0, 2.0).passes(v), [False, True, True, True, False, False, False, False]
    )
    np.testing.assert_array_equal(
        SpecLimit("g", min=1.0).passes(v), [False, True, True, True, True, False, True, False]
    )
    np.testing.assert_array_equal(
        SpecLimit("g", max=2.0).passes(v), [True, True, True, True, False, False, False, True]
    )
    np.testing.assert_array_equal(SpecLimit("g").passes(v), [True, True, True, True, True, False, True, True])


@pytest.mark.parametrize(("lo", "hi", "match"), [(2.0, 1.0, "exceeds"), (float("nan"), None, "min is NaN")])
def test_spec_limit_rejects_bad_bounds(lo: float | None, hi: float | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SpecLimit("gain", lo, hi)


# --------------------------------------------------------------------------------------------------
# yield_table
# --------------------------------------------------------------------------------------------------


def test_yield_table_counting_rules() -> None:
    #            0     1     2       3       4     5       6
    gain = np.array([20.0, 21.0, 15.0, np.nan, 22.0, 19.0, 25.0])
    nf = np.array([1.0, 3.5, 1.2, np.nan, 1.1, 0.9, 1.0])
    sim_ok = np.array([True, True, True, False, True, True, False])
    # sample 6 failed to simulate but its (stale) values would pass: it must still fail
    limits = [SpecLimit("gain", min=18.0), SpecLimit("nf", max=2.0)]
    s = yield_table({"gain": gain, "nf": nf, "unused": np.zeros(7)}, sim_ok, limits)

    np.testing.assert_array_equal(s.pass_mask, [True, False, False, False, True, True, False])
    assert (s.overall.passed, s.overall.n) == (3, 7)
    assert s.failed_simulations == 2
    # per-spec yield over all 7 samples; failed simulations count as failing
    assert (s.per_spec["gain"].passed, s.per_spec["gain"].n) == (4, 7)  # 0, 1, 4, 5
    assert (s.per_spec["nf"].passed, s.per_spec["nf"].n) == (4, 7)  # 0, 2, 4, 5
    # failures only among successfully simulated samples
    assert s.failures_per_spec == {"gain": 1, "nf": 1}
    assert s.overall.low <= 3 / 7 <= s.overall.high
    with pytest.raises(ValueError):
        s.pass_mask[0] = False


def test_yield_table_without_limits_counts_simulations() -> None:
    s = yield_table({}, np.array([True, False, True, True]), [], confidence=0.9)
    assert (s.overall.passed, s.overall.n, s.overall.confidence) == (3, 4, 0.9)
    assert s.per_spec == {} and s.failures_per_spec == {}
    assert s.failed_simulations == 1


def test_yield_table_errors() -> None:
    ok = np.ones(3, dtype=bool)
    with pytest.raises(ValueError, match="missing from values: nf"):
        yield_table({"gain": np.zeros(3)}, ok, [SpecLimit("gain", 0.0), SpecLimit("nf", max=2.0)])
    with pytest.raises(ValueError, match="'gain' has shape \\(4,\\), but sim_ok has 3"):
        yield_table({"gain": np.zeros(4)}, ok, [SpecLimit("gain", 0.0)])
    with pytest.raises(ValueError, match="more than once: gain"):
        yield_table({"gain": np.zeros(3)}, ok, [SpecLimit("gain", 0.0), SpecLimit("gain", max=1.0)])
    with pytest.raises(ValueError, match="boolean"):
        yield_table({"gain": np.zeros(3)}, np.ones(3), [SpecLimit("gain", 0.0)])
    with pytest.raises(ValueError, match="one-dimensional"):
        yield_table({}, np.ones((3, 1), dtype=bool), [])
