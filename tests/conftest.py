"""Shared test helpers."""

from collections.abc import Mapping, Sequence

import numpy as np

from optiyield.sim.engine import OK, Engine, SimJob
from optiyield.spec import Spec


def simulate_points(spec: Spec, points: Sequence[Mapping[str, float]], job: SimJob | None = None) -> dict:
    """Simulate design points (parameter → value; the rest at the spec's nominal values) through ngspice
    in one batched call and return the measures; every simulation must succeed."""
    nominal = spec.nominal()
    values = np.array([[point.get(n, nominal[n]) for n in spec.parameters] for point in points])
    results = Engine(workers=2).run(job or spec.testbench.job(spec.parameters), values)
    assert (results.status == OK).all(), results.reason
    return results.values
