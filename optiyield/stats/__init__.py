"""Statistics of manufacturing variation: seeded uniform sources and the variation model."""

from optiyield.stats.sampling import UNIFORM_EPS, SamplingMethod, UniformSource
from optiyield.stats.variation import Draw, OutcomeSet, StatisticalModel, VariationError

__all__ = [
    "UNIFORM_EPS",
    "Draw",
    "OutcomeSet",
    "SamplingMethod",
    "StatisticalModel",
    "UniformSource",
    "VariationError",
]
