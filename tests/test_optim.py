"""Optimizer mathematics on analytic problems with known answers (no simulator: DESIGN allows an
analytic "circuit" for unit tests of optimizer mathematics; every circuit flow is tested via ngspice
in tests/test_run.py)."""

from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import norm

from optiyield.objective import ErrorModel, alpha_weights, generalized_l1, one_sided_l1
from optiyield.optim.evaluator import Responses
from optiyield.optim.gradients import IGAT, PAST, Central
from optiyield.optim.minimax import minimax
from optiyield.optim.trust_region import run_trust_region
from optiyield.optim.yield_l1 import OneSidedL1Model, yield_l1
from optiyield.sim.meter import Meter
from optiyield.spec import SpecBound
from optiyield.stats.variation import Draw, OutcomeSet, StatisticalModel


class AnalyticEvaluator:
    """The Evaluator interface over responses(x) = f(x): outcomes perturb x additively."""

    def __init__(self, f: Callable[[np.ndarray], dict[str, np.ndarray]], specs: dict[str, SpecBound],
                 lower, upper, x0) -> None:  # noqa: ANN001
        self.f = f
        self.errors = ErrorModel.from_specs(specs)
        self.lower, self.upper = np.asarray(lower, float), np.asarray(upper, float)
        self.x0 = np.asarray(x0, float)
        self.names = tuple(f"x{k}" for k in range(len(self.x0)))
        self.meter = Meter()

    def clip(self, x):  # noqa: ANN001, ANN201
        return np.clip(x, self.lower, self.upper)

    def design(self, x):  # noqa: ANN001, ANN201
        return {n: float(v) for n, v in zip(self.names, x, strict=True)}

    def responses(self, points, outcomes=None) -> Responses:  # noqa: ANN001
        points = np.atleast_2d(points)
        rows = []
        for x in points:
            if outcomes is None:
                rows.append(x[None, :])
            else:
                varied = outcomes.apply(self.design(x))
                rows.append(np.column_stack([varied[n] for n in self.names]))
        block = np.stack(rows)  # (M, N, n)
        values = self.f(block)
        self.meter.simulations += block.shape[0] * block.shape[1]
        return Responses(values=values, status=np.full(block.shape[:2], "ok", dtype=object),
                         reason=np.full(block.shape[:2], "", dtype=object), rows=block.reshape(-1, block.shape[-1]))


def test_generalized_l1_and_alpha():
    e = np.array([[-1.0, -1.0], [0.5, -1.0], [0.2, 0.3], [0.0, -1.0]])
    np.testing.assert_allclose(generalized_l1(e), [-0.5, 0.5, 0.5, 0.0])
    alpha = alpha_weights(generalized_l1(e))
    np.testing.assert_allclose(alpha, [2.0, 2.0, 2.0, 1e3])
    assert one_sided_l1(e, alpha) == pytest.approx(2 * 0.5 + 2 * 0.5)


def test_error_scaling_mixes_units():
    model = ErrorModel.from_specs({"gain": SpecBound(min=10), "power": SpecBound(max=1e-3, scale=2e-4)})
    e = model.errors({"gain": np.array([9.0, 12.0]), "power": np.array([1.2e-3, 0.5e-3])})
    np.testing.assert_allclose(e, [[0.1, 1.0], [-0.2, -2.5]])


def circle_problem(x0=(0.9, 0.7), third: bool = True) -> AnalyticEvaluator:  # noqa: ANN001
    """R_k = |x − c_k|² ≤ 0 for the points c = (0, 0), (1, 0), (0.5, 1): the minimax point is their
    circumcentre (0.5, 0.375), value 0.390625 — a vertex of the max function, where successive LP
    converges fast. Without the third point the minimax (0.5, 0) is not a vertex (value 0.25)."""
    centres = [(0.0, 0.0), (1.0, 0.0)] + ([(0.5, 1.0)] if third else [])

    def f(x: np.ndarray) -> dict[str, np.ndarray]:
        return {f"r{k}": (x[..., 0] - c[0]) ** 2 + (x[..., 1] - c[1]) ** 2 for k, c in enumerate(centres)}

    specs = {f"r{k}": SpecBound(max=0) for k in range(len(centres))}
    return AnalyticEvaluator(f, specs, [-2, -2], [2, 2], x0)


@pytest.mark.parametrize("gradient", ["past", "igat", "central"])
def test_minimax_reaches_known_minimax_point(gradient):
    evaluator = circle_problem()
    result = minimax(evaluator, gradient=gradient, max_iter=60, radius=0.2)
    np.testing.assert_allclose(result.x, [0.5, 0.375], atol=1e-3)
    assert result.objective == pytest.approx(0.390625, abs=1e-4)
    assert result.simulations == evaluator.meter.simulations > 0
    assert result.history[0]["objective"] > result.objective


def test_minimax_non_vertex_solution_converges_in_value():
    """Pure SLP converges only linearly in a smooth direction (here x₂); the value still converges."""
    result = minimax(circle_problem(third=False), max_iter=60, radius=0.2)
    assert result.objective == pytest.approx(0.25, abs=1e-4)
    assert abs(result.x[0] - 0.5) < 1e-3 and abs(result.x[1]) < 1e-2


def test_minimax_respects_bounds():
    evaluator = circle_problem(x0=(0.9, 0.9))
    evaluator.lower = np.array([0.7, 0.5])  # the unconstrained minimax (0.5, 0.375) is outside
    result = minimax(evaluator, max_iter=40)
    assert (result.x >= evaluator.lower - 1e-12).all() and (result.x <= evaluator.upper + 1e-12).all()
    assert result.x[0] == pytest.approx(0.7, abs=1e-6) and result.x[1] == pytest.approx(0.5, abs=1e-6)


def linear_problem(a: np.ndarray, b: np.ndarray) -> AnalyticEvaluator:
    def f(x: np.ndarray) -> dict[str, np.ndarray]:
        r = x @ a.T + b
        return {f"r{q}": r[..., q] for q in range(a.shape[0])}

    n = a.shape[1]
    return AnalyticEvaluator(f, {f"r{q}": SpecBound(max=1) for q in range(a.shape[0])}, -10 * np.ones(n),
                             10 * np.ones(n), np.zeros(n))


def test_igat_reproduces_exact_gradient_of_linear_function_after_n_independent_steps():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    evaluator = linear_problem(a, b)
    provider = IGAT(evaluator, None, refresh=100)
    x = evaluator.x0
    provider.start(x)
    provider.jac[:] = 0.0  # forget the finite-difference start: Broyden alone must recover A
    steps = rng.normal(size=(4, 4))  # four independent, non-orthogonal steps
    for step in steps:
        x = x + step
        r = provider.trial(x)
        provider.accept(x, r)
    np.testing.assert_allclose(provider.jac[0], a, atol=1e-9)
    assert provider.special_iterations == 0 and provider.broyden_updates == 4


def test_igat_special_iteration_restores_missing_direction():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    evaluator = linear_problem(a, b)
    provider = IGAT(evaluator, None, refresh=100)
    x = evaluator.x0
    provider.start(x)
    provider.jac[:] = 0.0
    for step in ([1.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0], [0, 2.0, 0]):  # 2nd and 4th steps add nothing new
        x = x + np.array(step)
        provider.accept(x, provider.trial(x))
    assert provider.special_iterations >= 1
    np.testing.assert_allclose(provider.jac[0], a, atol=1e-9)


def test_past_and_central_match_linear_jacobian():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    for provider in (PAST(linear_problem(a, b), None), Central(linear_problem(a, b), None)):
        _, jac = provider.start(np.array([0.3, -0.2, 1.0]))
        np.testing.assert_allclose(jac[0], a, atol=1e-8)


def gaussian_box_problem(sigma: float, n_outcomes: int, seed: int):  # noqa: ANN201
    """x + Δ with Δ ~ N(0, σ²I) must land in the box [0, 1]²: yield is maximal at the centre, where it
    is (2Φ(0.5/σ) − 1)²."""

    def f(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"r1": x[..., 0], "r2": x[..., 1]}

    specs = {"r1": SpecBound(min=0, max=1, scale=1), "r2": SpecBound(min=0, max=1, scale=1)}
    evaluator = AnalyticEvaluator(f, specs, [-1, -1], [2, 2], [0.1, 0.85])
    model = StatisticalModel([Draw("x0", "normal", ("x0",), sigma), Draw("x1", "normal", ("x1",), sigma)])
    return evaluator, OutcomeSet.draw(model, n_outcomes, "mc", seed)


@pytest.mark.parametrize("gradient", ["past", "igat"])
def test_one_sided_l1_raises_yield_to_near_analytic_optimum(gradient):
    sigma = 0.3
    evaluator, outcomes = gaussian_box_problem(sigma, 400, seed=3)
    optimum = (2 * norm.cdf(0.5 / sigma) - 1) ** 2  # 0.818
    result = yield_l1(evaluator, outcomes, gradient=gradient, max_iter=25, phases=2)
    start = result.history[0]["yield"]
    assert start < 0.55
    assert result.yield_estimate.value > optimum - 0.05, result.status
    assert result.yield_estimate.low < optimum < result.yield_estimate.high + 0.05
    np.testing.assert_allclose(result.x, [0.5, 0.5], atol=0.12)
    assert all("yield_low" in h for h in result.history if "radius" in h)


def test_common_random_numbers_make_yield_deterministic():
    evaluator, outcomes = gaussian_box_problem(0.3, 200, seed=4)
    first = yield_l1(evaluator, outcomes, gradient="past", max_iter=5, phases=1)
    evaluator2, outcomes2 = gaussian_box_problem(0.3, 200, seed=4)
    second = yield_l1(evaluator2, outcomes2, gradient="past", max_iter=5, phases=1)
    np.testing.assert_array_equal(first.x, second.x)
    assert first.yield_estimate == second.yield_estimate


def test_igat_refresh_zero_never_recomputes_past_and_refine_zero_skips_the_polish():
    """refresh=0 (the paper's IGAT): after the start, no PAST Jacobian, so every later simulation is a trial
    or special-iteration point of N outcomes; refine=0: no quasi-Newton evaluations after the phases.
    The same problem with refresh=1 pays (n + 1)·N per accepted step."""
    counts = {}
    for refresh in (0, 1):
        evaluator, outcomes = gaussian_box_problem(0.3, 50, seed=4)
        result = yield_l1(evaluator, outcomes, gradient="igat", max_iter=6, phases=2, refresh=refresh, refine=0)
        assert not any(h.get("quasi_newton") for h in result.history)
        counts[refresh] = result.simulations
        if refresh == 0:
            extra = result.simulations - 3 * outcomes.n  # the start: (n + 1)·N with n = 2
            assert extra >= 0 and extra % outcomes.n == 0
            trials = sum(1 for h in result.history if h.get("iteration", 0) > 0 and "rho" in h)
            assert extra // outcomes.n >= trials  # trials, plus any special iterations
            assert result.yield_estimate.value > result.history[0]["yield"]
    assert counts[1] > counts[0]


def test_igat_stall_restart_recomputes_the_jacobian_once_per_accepted_point():
    """With stall_restart, an IGAT stall (the LP predicts no decrease, or the radius collapses) gets one PAST
    Jacobian (n·N simulations) and the starting radius back; a second stall without an accepted step ends
    the phase. Without it, the first stall ends the phase. A zeroed (useless) Jacobian forces the stall."""
    evaluator, outcomes = gaussian_box_problem(0.3, 40, seed=6)
    for restart in (False, True):
        provider = IGAT(evaluator, outcomes, refresh=0)
        x = evaluator.x0.copy()
        responses, jacobian = provider.start(x)
        jacobian[:] = 0.0  # the LP predicts no decrease: a stall at the first iteration
        model = OneSidedL1Model(evaluator.errors, np.ones(outcomes.n))
        before = evaluator.meter.simulations
        outcome = run_trust_region(evaluator, provider, model, x, max_iter=40, radius=0.1,
                                   start=(responses, jacobian), stall_restart=restart)
        events = [h for h in outcome.history if h.get("event", "").startswith("restart")]
        if not restart:
            assert events == [] and provider.restarts == 0
            assert evaluator.meter.simulations == before  # nothing predicted, nothing simulated
        else:
            assert len(events) >= 1 and provider.restarts == len(events)
            assert evaluator.meter.simulations - before >= 2 * outcomes.n  # the n·N PAST columns
            assert model.value(outcome.responses) < model.value(responses)  # the fresh Jacobian made progress


def test_trust_region_is_scaled_to_the_ranges_of_physical_units():
    """Variables in farads (range 4 fF) gave the LP gradients of 1e15 and bounds of 1e-16, which HiGHS and
    Clarabel both failed on (the TSVA's compensation capacitor); the subproblem is solved in fractions of each
    range, so the circle problem in femto units reaches the same minimax point."""
    unit = 1e-15
    plain = circle_problem()

    def f(x: np.ndarray) -> dict[str, np.ndarray]:
        return plain.f(x / unit)

    evaluator = AnalyticEvaluator(f, {f"r{k}": SpecBound(max=0) for k in range(3)}, [-2 * unit, -2 * unit],
                                  [2 * unit, 2 * unit], [0.9 * unit, 0.7 * unit])
    result = minimax(evaluator, max_iter=60, radius=0.2)
    np.testing.assert_allclose(result.x / unit, [0.5, 0.375], atol=1e-3)
    assert result.objective == pytest.approx(0.390625, abs=1e-4)


def test_an_unsolvable_subproblem_ends_the_run_at_its_current_point():
    """A subproblem the LP solvers cannot solve stops the trust region with a status, not an exception: the
    run keeps what it has."""
    evaluator = circle_problem()

    class Unsolvable:
        def value(self, responses: np.ndarray) -> float:
            return float(responses.max())

        def solve(self, *_: object) -> tuple[np.ndarray, float]:
            raise RuntimeError("LP subproblem not solved (status None)")

    outcome = run_trust_region(evaluator, PAST(evaluator, None), Unsolvable(), evaluator.x0, max_iter=5, radius=0.1)
    assert outcome.status == "stopped: LP subproblem not solved (status None)"
    np.testing.assert_allclose(outcome.x, evaluator.x0)
    assert outcome.iterations == 0
