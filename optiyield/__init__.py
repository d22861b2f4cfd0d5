"""optiyield: yield-driven design of analog and RF circuits on ngspice.

The Python API (docs/python-api.md)::

    import optiyield as oy
    problem = oy.load("specs/csva.yaml")
    result = problem.monte_carlo(samples=500)

The names below are imported on first use (PEP 562), so ``import optiyield`` stays fast.
"""

TYPE_CHECKING = False  # not `from typing import …`: typing alone would triple the import time

__version__ = "0.1.0"

#: Public name → module that defines it.
_EXPORTS = {
    "load": "optiyield.api", "open_run": "optiyield.api", "Problem": "optiyield.api",
    "YieldResult": "optiyield.api", "SensitivityResult": "optiyield.api", "RunResult": "optiyield.api",
    "CornerResult": "optiyield.api",
    "OptionError": "optiyield.api", "RunError": "optiyield.api", "SpecError": "optiyield.api",
    "NgspiceNotFound": "optiyield.api", "ClusterError": "optiyield.api", "StoreMismatch": "optiyield.api",
    "YieldEstimate": "optiyield.api", "WorstCaseAnalysis": "optiyield.api", "HighSigmaResult": "optiyield.api",
    "serve": "optiyield.dashboard",
}

__all__ = [  # noqa: RUF022 - grouped: version, loading, results, errors, then the dashboard
    "__version__", "load", "open_run", "Problem", "YieldResult", "SensitivityResult", "RunResult", "CornerResult",
    "YieldEstimate", "WorstCaseAnalysis", "HighSigmaResult", "OptionError", "RunError", "SpecError",
    "NgspiceNotFound", "ClusterError", "StoreMismatch", "serve",
]

if TYPE_CHECKING:
    from optiyield.api import (
        ClusterError,
        CornerResult,
        HighSigmaResult,
        NgspiceNotFound,
        OptionError,
        Problem,
        RunError,
        RunResult,
        SensitivityResult,
        SpecError,
        StoreMismatch,
        WorstCaseAnalysis,
        YieldEstimate,
        YieldResult,
        load,
        open_run,
    )


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'optiyield' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
