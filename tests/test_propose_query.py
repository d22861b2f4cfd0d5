"""Threshold queries: targets pushed inside the spec box, diverse selection, lookup ranking."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optiyield.objective import ErrorModel
from optiyield.propose.query import query_errors, select_diverse, target_vectors
from optiyield.spec import SpecBound

NAMES = ("gain", "bw", "power")


def query(gain_min: float, power_max: float) -> ErrorModel:
    return ErrorModel.from_specs({"gain": SpecBound(min=gain_min), "power": SpecBound(max=power_max)})


@settings(max_examples=60, deadline=None)
@given(gain_min=st.floats(-5, 30), power_max=st.floats(1e-4, 1e-2), seed=st.integers(0, 2**31))
def test_every_target_meets_every_bound_and_keeps_unconstrained_measures(gain_min, power_max, seed):
    rng = np.random.default_rng(seed)
    rows = np.column_stack([rng.uniform(0, 20, 50), rng.uniform(1e8, 1e9, 50), rng.uniform(1e-4, 5e-3, 50)])
    q = query(gain_min, power_max)
    targets = target_vectors(q, NAMES, rows, 40, np.random.default_rng(seed))
    assert targets.shape == (40, 3)
    assert (targets[:, 0] >= gain_min - 1e-12).all() and (targets[:, 2] <= power_max + 1e-18).all()
    assert (query_errors(q, NAMES, targets) <= 1e-12).all()
    assert np.isin(targets[:, 1], rows[:, 1]).all()  # bw is not constrained: real training values


def test_rows_inside_the_box_with_zero_margin_are_unchanged():
    rows = np.array([[15.0, 2e8, 1e-3], [16.0, 3e8, 2e-3]])
    targets = target_vectors(query(10.0, 5e-3), NAMES, rows, 3, np.random.default_rng(0))
    assert all(any(np.array_equal(t, r) for r in rows) for t in targets[:1])


def test_select_diverse_respects_order_and_distance():
    points = np.array([[0.0, 0.0], [0.01, 0.0], [0.5, 0.5], [0.51, 0.5], [1.0, 1.0]])
    chosen = select_diverse(points, np.arange(5), 3, min_distance=0.1)
    assert list(chosen) == [0, 2, 4]
    topped_up = select_diverse(points, np.arange(5), 5, min_distance=0.1)
    assert sorted(topped_up) == [0, 1, 2, 3, 4] and list(topped_up[:3]) == [0, 2, 4]


def test_query_errors_is_the_weighted_worst_scaled_violation():
    q = query(10.0, 1e-3)
    errors = query_errors(q, NAMES, np.array([[12.0, 0.0, 0.5e-3], [9.0, 0.0, 0.5e-3], [12.0, 0.0, 2e-3]]))
    assert np.allclose(errors, [max(-0.2, -0.5), 0.1, 1.0])
