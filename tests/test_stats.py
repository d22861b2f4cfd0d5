"""Tests for optiyield.stats: uniform sources, the variation model and common-random-number outcome sets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import qmc

from optiyield.stats import (
    UNIFORM_EPS,
    Draw,
    OutcomeSet,
    StatisticalModel,
    UniformSource,
    VariationError,
)

METHODS = ["mc", "sobol"]


# --------------------------------------------------------------------------------------------------
# UniformSource
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_stream(method: str) -> None:
    a = UniformSource(4, method, seed=7).draw(64)
    b = UniformSource(4, method, seed=7).draw(64)
    c = UniformSource(4, method, seed=8).draw(64)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("method", METHODS)
def test_draws_continue_the_stream(method: str) -> None:
    src = UniformSource(3, method, seed=1)
    two = np.vstack([src.draw(10), src.draw(10)])
    one = UniformSource(3, method, seed=1).draw(20)
    np.testing.assert_array_equal(two, one)
    assert src.consumed == 20


@pytest.mark.parametrize("method", METHODS)
def test_uneven_continuation_is_warning_free(method: str) -> None:
    src = UniformSource(5, method, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parts = [src.draw(k) for k in (3, 0, 17, 44)]
    np.testing.assert_array_equal(np.vstack(parts), UniformSource(5, method, seed=3).draw(64))


@pytest.mark.parametrize("method", METHODS)
def test_values_strictly_inside_unit_interval(method: str) -> None:
    u = UniformSource(6, method, seed=0).draw(4096)
    assert u.shape == (4096, 6)
    assert np.all(u >= UNIFORM_EPS)
    assert np.all(u <= 1.0 - UNIFORM_EPS)
    assert np.all((u > 0.0) & (u < 1.0))


@pytest.mark.parametrize("method", METHODS)
def test_zero_dims(method: str) -> None:
    src = UniformSource(0, method, seed=0)
    assert src.draw(5).shape == (5, 0)
    assert src.consumed == 5


@pytest.mark.parametrize("method", METHODS)
def test_copy_is_independent(method: str) -> None:
    src = UniformSource(2, method, seed=11)
    src.draw(8)
    clone = src.copy()
    np.testing.assert_array_equal(clone.draw(8), src.draw(8))


@pytest.mark.parametrize(
    ("args", "match"),
    [((-1, "mc", 0), "dims"), ((2, "lhs", 0), "method"), ((2.5, "mc", 0), "dims")],
)
def test_uniform_source_rejects_bad_arguments(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        UniformSource(*args)


def test_uniform_source_rejects_negative_n() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        UniformSource(2, "mc", 0).draw(-1)


def test_sobol_has_lower_discrepancy_than_mc() -> None:
    n, d = 256, 3
    sobol = qmc.discrepancy(UniformSource(d, "sobol", seed=5).draw(n))
    mc = qmc.discrepancy(UniformSource(d, "mc", seed=5).draw(n))
    assert sobol < mc / 3


# --------------------------------------------------------------------------------------------------
# StatisticalModel: deviates and apply
# --------------------------------------------------------------------------------------------------

N_BIG = 200_000


def _sample(model: StatisticalModel, nominal: dict[str, float], n: int = N_BIG, seed: int = 42):
    z = model.deviates(UniformSource(model.dims, "mc", seed).draw(n))
    return z, model.apply(nominal, z)


def test_normal_moments_and_correlations() -> None:
    model = StatisticalModel(
        [
            Draw("tox", "normal", ("tox",), 0.1e-9),
            Draw("vth", "normal", ("vth",), 0.02),
            Draw("rsh", "normal", ("rsh",), 3.0),
        ],
        correlations=[("tox", "vth", 0.6), ("vth", "rsh", -0.3)],
    )
    nominal = {"tox": 4e-9, "vth": 0.45, "rsh": 50.0}
    _, vals = _sample(model, nominal)
    sigmas = {"tox": 0.1e-9, "vth": 0.02, "rsh": 3.0}
    for p, s in sigmas.items():
        x = vals[p]
        # mean within 5 standard errors, std within 2 %
        assert abs(x.mean() - nominal[p]) < 5 * s / np.sqrt(N_BIG)
        assert x.std(ddof=1) == pytest.approx(s, rel=0.02)
    r = np.corrcoef([vals["tox"], vals["vth"], vals["rsh"]])
    # standard error of a correlation estimate is about (1 - rho^2)/sqrt(n) ≈ 0.002
    assert r[0, 1] == pytest.approx(0.6, abs=0.01)
    assert r[1, 2] == pytest.approx(-0.3, abs=0.01)
    assert r[0, 2] == pytest.approx(0.0, abs=0.01)
    np.testing.assert_allclose(model.correlation_matrix, [[1, 0.6, 0], [0.6, 1, -0.3], [0, -0.3, 1]])


def test_global_draw_shares_one_deviate() -> None:
    model = StatisticalModel([Draw("rproc", "normal", ("r1", "r2", "r3"), 10.0, mode="global")])
    assert model.dims == 1
    nominal = {"r1": 1e3, "r2": 2e3, "r3": 5e3}
    _, vals = _sample(model, nominal, n=1000)
    d1, d2, d3 = (vals[p] - nominal[p] for p in ("r1", "r2", "r3"))
    np.testing.assert_allclose(d1, d2, atol=1e-9)
    np.testing.assert_allclose(d1, d3, atol=1e-9)
    assert d1.std() > 5.0


def test_mismatch_draw_is_independent_per_target() -> None:
    model = StatisticalModel([Draw("mm", "normal", ("m1", "m2", "m3"), 0.01, mode="mismatch")])
    assert model.dims == 3
    nominal = {"m1": 0.5, "m2": 0.5, "m3": 0.5}
    _, vals = _sample(model, nominal, n=50_000)
    deltas = np.array([vals[p] - 0.5 for p in ("m1", "m2", "m3")])
    r = np.corrcoef(deltas)
    assert np.all(np.abs(r[np.triu_indices(3, 1)]) < 0.03)
    for row in deltas:
        assert row.std() == pytest.approx(0.01, rel=0.03)


def test_relative_vs_absolute_spread() -> None:
    model = StatisticalModel(
        [
            Draw("rel", "normal", ("r", "neg"), 0.05, relative=True, mode="mismatch"),
            Draw("abs", "normal", ("c",), 5.0, relative=False),
        ]
    )
    nominal = {"r": 1000.0, "neg": -200.0, "c": 1000.0}
    _, vals = _sample(model, nominal, n=100_000)
    assert vals["r"].std() == pytest.approx(50.0, rel=0.02)  # 5 % of 1 kΩ
    assert vals["neg"].std() == pytest.approx(10.0, rel=0.02)  # 5 % of |−200|
    assert vals["neg"].mean() == pytest.approx(-200.0, abs=0.2)
    assert vals["c"].std() == pytest.approx(5.0, rel=0.02)  # absolute


def test_uniform_bounds_and_moments() -> None:
    model = StatisticalModel([Draw("tol", "uniform", ("c1", "c2"), 0.1, relative=True, mode="mismatch")])
    nominal = {"c1": 1e-12, "c2": 2e-12}
    z, vals = _sample(model, nominal, n=100_000)
    assert np.all((z > -1.0) & (z < 1.0))
    for p, nom in nominal.items():
        x = vals[p]
        assert np.all(x > 0.9 * nom) and np.all(x < 1.1 * nom)
        assert x.min() < 0.901 * nom and x.max() > 1.099 * nom  # the whole window is used
        assert x.std() == pytest.approx(0.1 * nom / np.sqrt(3), rel=0.02)


def test_uniform_deviates_bounded_even_at_extreme_uniforms() -> None:
    model = StatisticalModel([Draw("u", "uniform", ("a",), 1.0), Draw("g", "normal", ("b",), 1.0)])
    u = np.array([[UNIFORM_EPS, UNIFORM_EPS], [1 - UNIFORM_EPS, 1 - UNIFORM_EPS]])
    z = model.deviates(u)
    assert np.all(np.isfinite(z))
    assert np.all(np.abs(z[:, 0]) < 1.0)


def test_global_and_mismatch_deltas_add() -> None:
    model = StatisticalModel(
        [
            Draw("proc", "normal", ("m1", "m2"), 0.02),
            Draw("mm", "normal", ("m1", "m2"), 0.005, mode="mismatch"),
            Draw("cap", "uniform", ("c",), 0.1, relative=True),
        ]
    )
    assert model.dims == 4
    assert model.parameters == ("c", "m1", "m2")
    assert model.columns("mm") == slice(1, 3)
    z = np.array([[1.0, 2.0, -1.0, 0.5], [-0.5, 0.0, 3.0, -0.25]])
    nominal = {"m1": 0.4, "m2": 0.5, "c": 2e-12, "unused": 7.0}
    vals = model.apply(nominal, z)
    assert set(vals) == {"c", "m1", "m2"}
    np.testing.assert_allclose(vals["m1"], 0.4 + 0.02 * z[:, 0] + 0.005 * z[:, 1])
    np.testing.assert_allclose(vals["m2"], 0.5 + 0.02 * z[:, 0] + 0.005 * z[:, 2])
    np.testing.assert_allclose(vals["c"], 2e-12 * (1 + 0.1 * z[:, 3]))


def test_empty_model() -> None:
    model = StatisticalModel([])
    assert model.dims == 0
    assert model.parameters == ()
    out = OutcomeSet.draw(model, 4, "sobol", 0)
    assert out.z.shape == (4, 0)
    assert out.apply({"x": 1.0}) == {}


def test_deviates_and_apply_check_shapes() -> None:
    model = StatisticalModel([Draw("a", "normal", ("x",), 1.0)])
    with pytest.raises(VariationError, match=r"shape \(n, 1\)"):
        model.deviates(np.full((3, 2), 0.5))
    with pytest.raises(VariationError, match="strictly inside"):
        model.deviates(np.array([[0.0]]))
    with pytest.raises(VariationError, match=r"shape \(n, 1\)"):
        model.apply({"x": 1.0}, np.zeros(3))


# --------------------------------------------------------------------------------------------------
# Validation messages
# --------------------------------------------------------------------------------------------------

A = Draw("a", "normal", ("x",), 1.0)
B = Draw("b", "normal", ("y",), 1.0)
C = Draw("c", "normal", ("z",), 1.0)
U = Draw("u", "uniform", ("w",), 1.0)
M = Draw("m", "normal", ("p", "q"), 1.0, mode="mismatch")


@pytest.mark.parametrize(
    ("draws", "corr", "match"),
    [
        (
            [A, Draw("a", "normal", ("y",), 2.0), B, Draw("b", "uniform", ("z",), 1.0)],
            [],
            r"duplicate.*: a, b",
        ),
        ([A, B], [("a", "ghost", 0.1)], r"unknown draw 'ghost'"),
        ([A, B], [("a", "a", 0.1)], r"draw 'a' with itself"),
        ([A, U], [("a", "u", 0.1)], r"draw 'u' is a global uniform draw; only global normal"),
        ([A, M], [("m", "a", 0.1)], r"draw 'm' is a mismatch normal draw; only global normal"),
        ([A, B], [("a", "b", 1.0)], r"\('a', 'b', 1.0\): \|rho\| must be < 1"),
        ([A, B], [("a", "b", -1.5)], r"\|rho\| must be < 1"),
        ([A, B], [("a", "b", float("nan"))], r"\|rho\| must be < 1"),
        ([A, B], [("a", "b", 0.2), ("b", "a", 0.3)], r"between 'b' and 'a' is listed twice"),
        (
            [A, B, C],
            [("a", "b", 0.9), ("b", "c", 0.9), ("a", "c", -0.9)],
            r"\(a, b, c\) is not positive definite: smallest eigenvalue -0\.8",
        ),
        ([A], [("a", "b")], r"not a \(draw_a, draw_b, rho\) triple"),
        ([A, B], [("a", "b", "high")], r"rho is not a number"),
    ],
)
def test_model_validation_messages(draws: list[Draw], corr: list, match: str) -> None:
    with pytest.raises(VariationError, match=match):
        StatisticalModel(draws, corr)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "", "dist": "normal", "targets": ("x",), "spread": 1.0}, "non-empty string"),
        ({"name": "d", "dist": "lognormal", "targets": ("x",), "spread": 1.0}, r"'d': dist must be"),
        ({"name": "d", "dist": "normal", "targets": ("x",), "spread": 1.0, "mode": "local"}, "mode must"),
        ({"name": "d", "dist": "normal", "targets": (), "spread": 1.0}, "'d' has no targets"),
        ({"name": "d", "dist": "normal", "targets": "x", "spread": 1.0}, "not a string"),
        ({"name": "d", "dist": "normal", "targets": ("x", "x"), "spread": 1.0}, "more than once: x"),
        ({"name": "d", "dist": "normal", "targets": ("x",), "spread": -1.0}, "non-negative"),
        ({"name": "d", "dist": "normal", "targets": ("x",), "spread": float("inf")}, "finite"),
    ],
)
def test_draw_validation_messages(kwargs: dict, match: str) -> None:
    with pytest.raises(VariationError, match=match):
        Draw(**kwargs)


def test_draw_accepts_list_targets() -> None:
    assert Draw("d", "normal", ["x", "y"], 1.0).targets == ("x", "y")  # type: ignore[arg-type]


def test_apply_rejects_incomplete_or_nonfinite_nominal() -> None:
    model = StatisticalModel([Draw("a", "normal", ("x", "y", "z"), 1.0)])
    z = np.zeros((2, 1))
    with pytest.raises(VariationError, match="lacks targeted parameters: y, z"):
        model.apply({"x": 1.0}, z)
    with pytest.raises(VariationError, match="not finite for: y"):
        model.apply({"x": 1.0, "y": float("nan"), "z": 0.0}, z)


def test_variation_error_is_value_error() -> None:
    assert issubclass(VariationError, ValueError)


# --------------------------------------------------------------------------------------------------
# OutcomeSet (common random numbers)
# --------------------------------------------------------------------------------------------------


def _crn_model() -> StatisticalModel:
    return StatisticalModel(
        [
            Draw("proc", "normal", ("w1", "w2"), 0.1e-6),
            Draw("mm", "normal", ("w1", "w2"), 0.02e-6, mode="mismatch"),
            Draw("cap", "uniform", ("c",), 5e-15),
        ]
    )


@pytest.mark.parametrize("method", METHODS)
def test_outcome_set_common_random_numbers(method: str) -> None:
    out = OutcomeSet.draw(_crn_model(), 256, method, seed=9)
    assert out.n == len(out) == 256
    p1 = {"w1": 10e-6, "w2": 20e-6, "c": 1e-12}
    p2 = {"w1": 12e-6, "w2": 15e-6, "c": 1.5e-12}
    v1, v2 = out.apply(p1), out.apply(p2)
    for k in p1:
        # the same Δ at both design points: samples differ exactly by the nominal difference
        np.testing.assert_allclose(v2[k] - v1[k], p2[k] - p1[k], rtol=1e-9, atol=1e-12 * abs(p1[k]))
        np.testing.assert_allclose(v1[k] - p1[k], v2[k] - p2[k], rtol=1e-6, atol=1e-9 * abs(p1[k]))
    # applying twice is deterministic
    np.testing.assert_array_equal(out.apply(p1)["w1"], v1["w1"])


@pytest.mark.parametrize("method", METHODS)
def test_outcome_set_extend_continues_stream(method: str) -> None:
    model = _crn_model()
    base = OutcomeSet.draw(model, 100, method, seed=4)
    ext = base.extend(156)
    assert ext.n == 256 and base.n == 100
    np.testing.assert_array_equal(ext.z[:100], base.z)
    np.testing.assert_array_equal(ext.z, OutcomeSet.draw(model, 256, method, seed=4).z)
    # extending the same set again gives the same rows (the set is immutable)
    np.testing.assert_array_equal(base.extend(156).z, ext.z)
    # chained extensions keep continuing the stream
    np.testing.assert_array_equal(ext.extend(44).z, OutcomeSet.draw(model, 300, method, seed=4).z)


def test_outcome_set_z_is_read_only() -> None:
    out = OutcomeSet.draw(_crn_model(), 8, "mc", seed=0)
    with pytest.raises(ValueError):
        out.z[0, 0] = 1.0
    assert "n=8" in repr(out)
