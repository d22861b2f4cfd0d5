"""Yield models: a forward surrogate of the measures over design × variation, and the proposer that
maximises the yield it predicts.

An inverse model (:mod:`optiyield.propose.inverse`) is trained on nominal data, so it can propose designs
that meet the specs but cannot tell a centred design from one on the edge of failure. A yield model is
trained on a variation dataset (``optiyield sweep --variation``: every row a design point with its own
Monte Carlo outcome, standardized deviates in columns ``z:0``, ``z:1``, …): one MLP maps (design,
deviates) → the measures the spec constrains. For any candidate design it then predicts the measures of a
thousand outcomes in one batch, and with them the yield, at no simulation cost.

:class:`YieldModelProposer` searches the design box on the predicted yield: a scrambled Sobol' pool, then a
Nelder–Mead refinement of the best few on a smoothed pass fraction, then diverse candidates ranked by
predicted yield. The ``propose`` step re-simulates them over the first outcomes of the run's own outcome
set and starts from the one passing most (``check_samples``), so a wrong surrogate costs a few dozen
simulations, never a bad start taken on trust.

Model files are Python pickles (via joblib), as inverse model files: load only files you trust.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import qmc

from optiyield.dataset import DEVIATE_PREFIX, deviate_columns
from optiyield.objective import ErrorModel, passes
from optiyield.propose import ModelProposer, Proposer
from optiyield.propose.inverse import (
    SURROGATE_OPTIONS,
    ModelFileError,
    Surrogate,
    check_fit,
    check_header,
    inverse_from_content,
    read_model_file,
    split_rows,
    train_surrogate,
)
from optiyield.propose.regressors import TrainOptions, require
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet

FORMAT = "optiyield-yield-model"
VERSION = 1
KIND = "yield"


@dataclass
class YieldModel:
    """A forward surrogate (design, deviates) → measures for one spec.

    ``design``: design variable names (the spec's order) with their bounds ``lower``/``upper`` (SI);
    ``dims``: deviate dimensions of the spec's statistical model; ``measures``: the predicted measures (the
    spec's constrained ones); ``scores``: test-split figures from training."""

    spec_name: str
    design: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    dims: int
    measures: tuple[str, ...]
    surrogate: Surrogate
    scores: dict[str, Any] = field(default_factory=dict)
    kind: str = KIND

    def predict(self, designs: np.ndarray, deviates: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted measures (SI) of M designs (M, D) over N outcomes (N, dims): ``{measure: (M, N)}``."""
        designs, deviates = np.atleast_2d(designs), np.atleast_2d(deviates)
        m, n = len(designs), len(deviates)
        inputs = np.hstack([np.repeat(designs, n, axis=0), np.tile(deviates, (m, 1))])
        predicted = self.surrogate.predict(inputs)
        return {name: predicted[:, k].reshape(m, n) for k, name in enumerate(self.measures)}

    def predicted_yield(self, errors: ErrorModel, designs: np.ndarray, deviates: np.ndarray,
                        smooth: float | None = None, batch: int = 200_000) -> np.ndarray:
        """Predicted yield (M,) of each design over the outcomes ``deviates``: the fraction whose predicted
        errors are all ≤ 0, or with ``smooth`` the mean of a logistic of the worst error / ``smooth`` (a
        differentiable stand-in for the count, for the local search)."""
        designs = np.atleast_2d(designs)
        step = max(1, batch // max(1, len(np.atleast_2d(deviates))))
        out = []
        for begin in range(0, len(designs), step):
            e = errors.errors(self.predict(designs[begin:begin + step], deviates))
            if smooth is None:
                out.append(passes(e).mean(axis=1))
            else:
                out.append((1.0 / (1.0 + np.exp(np.clip(e.max(axis=-1) / smooth, -60.0, 60.0)))).mean(axis=1))
        return np.concatenate(out)

    def save(self, path: str | Path) -> Path:
        """Write the versioned model file."""
        joblib = require("joblib")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({"format": FORMAT, "version": VERSION, "kind": KIND, "spec": self.spec_name,
                     "design": list(self.design), "lower": self.lower.tolist(), "upper": self.upper.tolist(),
                     "dims": self.dims, "measures": list(self.measures), "surrogate": self.surrogate.state(),
                     "scores": self.scores}, path, compress=3)
        return path

    def check(self, spec: Spec, source: str = "model") -> None:
        """Raise :class:`ModelFileError` unless the model fits ``spec``'s design variables, statistical model
        and constrained measures."""
        check_fit(spec, source, self.design, self.measures)
        if spec.model.dims != self.dims:
            raise ModelFileError(f"{source}: trained on {self.dims} deviate dimensions; spec {spec.name!r}'s "
                                 f"statistical model has {spec.model.dims} (sweep it again with --variation)")


def load_variation_dataset(path: str | Path, spec: Spec) -> tuple[np.ndarray, np.ndarray, int]:
    """Inputs (N, D + dims: design, SI, then deviates), measures (N, F: the spec's constrained ones, SI) and
    the number of rows dropped (failed or non-finite) of a ``sweep --variation`` dataset for ``spec``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset (make one with `optiyield sweep --variation`)")
    table = pd.read_parquet(path)
    deviates = deviate_columns(spec.model.dims)
    if spec.model.dims == 0:
        raise ValueError(f"spec {spec.name!r} has no statistical parameters: a yield model has nothing to learn")
    if not any(c.startswith(DEVIATE_PREFIX) for c in table.columns):
        raise ValueError(f"{path}: no deviate columns ({DEVIATE_PREFIX}0, …): a yield model needs a dataset from "
                         "`optiyield sweep --variation`")
    columns = [*spec.file.design, *deviates, *spec.file.specs]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: columns {', '.join(missing)} are missing; was it swept from another spec?")
    ok = table["status"].ne("failed") if "status" in table.columns else pd.Series(True, index=table.index)
    values = table.loc[ok, columns].to_numpy(dtype=float)
    values = values[np.isfinite(values).all(axis=1)]
    width = len(spec.file.design) + len(deviates)
    return values[:, :width], values[:, width:], int(len(table) - len(values))


def train_yield_model(spec: Spec, path: str | Path, options: TrainOptions = SURROGATE_OPTIONS,
                      test_fraction: float = 0.1) -> YieldModel:
    """Train a yield model on a ``sweep --variation`` dataset.

    ``scores``: rows used and dropped, the test split's mean absolute error per measure over its training
    range, and ``test_pass_agreement``: the share of test rows where the predicted and simulated measures
    agree on pass / fail of every spec (the figure the proposer relies on; read it against
    ``test_pass_fraction``, the share of test rows that pass in simulation)."""
    inputs, measures, dropped = load_variation_dataset(path, spec)
    if len(inputs) < 10:
        raise ValueError(f"only {len(inputs)} successful rows: too few to train a model (sweep more points)")
    split = split_rows(len(inputs), test_fraction, options.seed)
    surrogate = train_surrogate(inputs[split.train], measures[split.train], options)
    lower, upper = spec.design_bounds
    model = YieldModel(spec.name, tuple(spec.file.design), lower, upper, spec.model.dims, tuple(spec.file.specs),
                       surrogate)
    scores: dict[str, Any] = {"rows": len(inputs), "train": len(split.train), "test": len(split.test),
                              "dropped": dropped}
    if len(split.test):
        predicted = surrogate.predict(inputs[split.test])
        truth = measures[split.test]
        scale = np.maximum(np.ptp(measures[split.train], axis=0), 1e-30)
        scores["surrogate_test_mae_over_range"] = {
            n: float(v) for n, v in zip(model.measures, np.abs(predicted - truth).mean(axis=0) / scale, strict=True)}
        errors = ErrorModel.from_specs(spec.file.specs)

        def passing(values: np.ndarray) -> np.ndarray:
            return passes(errors.errors({n: values[:, k] for k, n in enumerate(model.measures)}))

        scores["test_pass_agreement"] = float((passing(predicted) == passing(truth)).mean())
        scores["test_pass_fraction"] = float(passing(truth).mean())
    model.scores = scores
    return model


def load_model(path: str | Path, spec: Spec | None = None) -> Any:
    """The model in a file from ``optiyield train``, read once: a yield model (this module's header) or an
    inverse model (:func:`~optiyield.propose.inverse.load_inverse`, whose errors it raises otherwise); with
    ``spec``, checked against that spec."""
    content = read_model_file(path)
    if not (isinstance(content, dict) and content.get("format") == FORMAT):
        return inverse_from_content(path, content, spec)
    content = check_header(path, content, FORMAT, VERSION, "optiyield train --model yield")
    try:
        model = YieldModel(spec_name=content["spec"], design=tuple(content["design"]),
                           lower=np.asarray(content["lower"], dtype=float),
                           upper=np.asarray(content["upper"], dtype=float), dims=int(content["dims"]),
                           measures=tuple(content["measures"]), surrogate=Surrogate.from_state(content["surrogate"]),
                           scores=dict(content.get("scores", {})))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: damaged model file ({type(exc).__name__}: {exc})") from None
    if spec is not None:
        model.check(spec, str(path))
    return model


def model_proposer(model: Any, targets: int = 256) -> Proposer:
    """The proposer of a model from :func:`load_model`: a yield model's :class:`YieldModelProposer`, else the
    inverse model's threshold query (:class:`~optiyield.propose.ModelProposer`, ``targets`` query targets)."""
    return YieldModelProposer(model) if isinstance(model, YieldModel) else ModelProposer(model, targets)


class YieldModelProposer:
    """Candidates ranked by a yield model's predicted yield over ``outcomes`` deviates (the spec's sampler).

    ``pool`` Sobol' designs are scored, the best ``refine`` are polished by Nelder–Mead on the smoothed pass
    fraction (``smooth``: logistic width in normalized spec-error units; ``evaluations`` each), and the
    best-predicted designs at least ``min_distance`` apart (unit design cube) are returned, best first.
    ``check_samples``: the run's outcomes its candidates are re-simulated over by default (the ``propose``
    step's ``check_samples``), because what it claims is yield."""

    check_samples = 25

    def __init__(self, model: YieldModel, outcomes: int = 1000, pool: int = 2048, refine: int = 4,
                 evaluations: int = 300, smooth: float = 0.02, min_distance: float = 0.05) -> None:
        self.model, self.outcomes, self.pool, self.refine = model, outcomes, pool, refine
        self.evaluations, self.smooth, self.min_distance = evaluations, smooth, min_distance
        self.name = "yield model"
        self.predicted: np.ndarray = np.empty(0)  # predicted yields of the last proposal's candidates

    def propose(self, spec: Spec, count: int, seed: int = 0) -> np.ndarray:
        """Up to ``count`` diverse designs (K, D), SI, best predicted yield first."""
        from optiyield.propose.query import select_diverse

        model = self.model
        model.check(spec)
        errors = ErrorModel.from_specs(spec.file.specs)
        deviates = OutcomeSet.draw(spec.model, self.outcomes, spec.run.sampler, seed).z  # type: ignore[arg-type]
        span = np.where(model.upper > model.lower, model.upper - model.lower, 1.0)

        def design(unit: np.ndarray) -> np.ndarray:
            return model.lower + np.clip(unit, 0.0, 1.0) * span

        units = qmc.Sobol(len(model.design), scramble=True, seed=seed).random(self.pool)
        scores = model.predicted_yield(errors, design(units), deviates)
        for start in np.argsort(-scores, kind="stable")[:self.refine]:
            found = minimize(lambda u: -model.predicted_yield(errors, design(u), deviates, self.smooth)[0],
                             units[start], method="Nelder-Mead",
                             options={"maxfev": self.evaluations, "xatol": 1e-3, "fatol": 1e-4})
            unit = np.clip(found.x, 0.0, 1.0)
            units = np.vstack([units, unit])
            scores = np.append(scores, model.predicted_yield(errors, design(unit), deviates)[0])
        order = np.argsort(-scores, kind="stable")
        chosen = select_diverse(units, order, count, self.min_distance)
        self.predicted = scores[chosen]
        return design(units[chosen])
