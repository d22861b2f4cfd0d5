"""Inverse models (spec measures → design variables) and forward surrogates, trained on sweep datasets.

:func:`train_inverse` takes a dataset written by ``optiyield sweep`` (Parquet: design columns, measure
columns, ``status``), keeps the successful rows, splits them 90/10 (seeded), fits [-1, 1] min-max scalers
on the training split only, and trains one regressor (see :mod:`optiyield.propose.regressors`) from the
spec's measures to its design variables, plus optionally a forward surrogate (design → measures) used to
rank candidates. :class:`InverseModel` is saved as one versioned file holding the scalers, the weights,
the spec's name, design variables (with bounds) and measure names; :func:`load_inverse` refuses a file
that is not a model file, has another format version, or was trained for other design variables or
measures.

Model files are Python pickles (via joblib): load only files you trust, as with any pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiyield.propose.regressors import (
    Regressor,
    TrainOptions,
    make_regressor,
    regressor_from_state,
    require,
)
from optiyield.spec import Spec

FORMAT = "optiyield-inverse-model"
VERSION = 1
SURROGATE_OPTIONS = TrainOptions(hidden=(128, 128, 128), epochs=150, loss="mse")


class ModelFileError(ValueError):
    """A model file is unreadable, of another format or version, or belongs to another spec."""


@dataclass(frozen=True)
class Split:
    """Row indices of the training and test splits of a dataset's successful rows."""

    train: np.ndarray
    test: np.ndarray


def split_rows(n: int, test_fraction: float = 0.1, seed: int = 0) -> Split:
    """A seeded random split of ``n`` rows (AICircuit: 90/10)."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test fraction must be in [0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return Split(train=np.sort(order[n_test:]), test=np.sort(order[:n_test]))


@dataclass(frozen=True)
class Dataset:
    """The successful rows of a sweep dataset: designs (N, D) and measures (N, F), SI units."""

    design_names: tuple[str, ...]
    measure_names: tuple[str, ...]
    designs: np.ndarray
    measures: np.ndarray
    dropped: int

    def __len__(self) -> int:
        return len(self.designs)


def load_dataset(path: str | Path, spec: Spec, measures: tuple[str, ...] | None = None) -> Dataset:
    """Read a sweep Parquet file for ``spec``: checks the columns, drops failed or non-finite rows.

    ``measures`` defaults to the measures the spec constrains (its ``specs:``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset (make one with `optiyield sweep`)")
    table = pd.read_parquet(path)
    design = tuple(spec.file.design)
    measures = tuple(measures or spec.file.specs)
    missing = [c for c in (*design, *measures) if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: columns {', '.join(missing)} are missing; was it swept from another spec?")
    ok = table["status"].ne("failed") if "status" in table.columns else pd.Series(True, index=table.index)
    values = table.loc[ok, [*design, *measures]].to_numpy(dtype=float)
    finite = np.isfinite(values).all(axis=1)
    values = values[finite]
    return Dataset(design, measures, values[:, :len(design)], values[:, len(design):],
                   dropped=int(len(table) - len(values)))


def _scaler(data: np.ndarray) -> Any:
    require("sklearn")
    from sklearn.preprocessing import MinMaxScaler

    return MinMaxScaler(feature_range=(-1.0, 1.0)).fit(data)


@dataclass
class Surrogate:
    """Forward model design (SI) → measures (SI), with its own train-split scalers."""

    design_scaler: Any
    measure_scaler: Any
    regressor: Regressor

    def predict(self, designs: np.ndarray) -> np.ndarray:
        """Predicted measures, shape (N, F)."""
        scaled = self.regressor.predict(self.design_scaler.transform(np.atleast_2d(designs)))
        return self.measure_scaler.inverse_transform(scaled)

    def state(self) -> dict[str, Any]:
        """Picklable content."""
        return {"design_scaler": self.design_scaler, "measure_scaler": self.measure_scaler,
                "regressor": self.regressor.state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Surrogate:
        """Inverse of :meth:`state`."""
        return cls(state["design_scaler"], state["measure_scaler"], regressor_from_state(state["regressor"]))


def train_surrogate(designs: np.ndarray, measures: np.ndarray, options: TrainOptions = SURROGATE_OPTIONS) -> Surrogate:
    """Fit a forward MLP surrogate on (training-split) designs → measures."""
    design_scaler, measure_scaler = _scaler(designs), _scaler(measures)
    regressor = make_regressor("mlp", options)
    regressor.fit(design_scaler.transform(designs), measure_scaler.transform(measures))
    return Surrogate(design_scaler, measure_scaler, regressor)


def check_fit(spec: Spec, source: str, design: tuple[str, ...], measures: tuple[str, ...]) -> None:
    """Raise :class:`ModelFileError` (naming ``source``) unless a model trained for ``design`` variables and on
    ``measures`` has the spec's design variables and knows every measure the spec constrains."""
    if tuple(spec.file.design) != design:
        raise ModelFileError(f"{source}: trained for design variables ({', '.join(design)}) but spec "
                             f"{spec.name!r} has ({', '.join(spec.file.design)})")
    missing = [m for m in spec.file.specs if m not in measures]
    if missing:
        raise ModelFileError(f"{source}: trained on measures ({', '.join(measures)}); spec {spec.name!r} "
                             f"constrains {', '.join(missing)}, which the model does not know")


@dataclass
class InverseModel:
    """A trained spec → design model with everything needed to use it on its spec.

    ``inputs``: the measure names (model inputs, in order); ``outputs``: design variable names;
    ``lower``/``upper``: the design bounds it was trained for (SI); ``train_measures``/``train_designs``:
    the training split (used to form threshold-query targets and by the lookup model);
    ``scores``: test-split figures from training."""

    kind: str
    spec_name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    measure_scaler: Any
    design_scaler: Any
    regressor: Regressor
    train_measures: np.ndarray
    train_designs: np.ndarray
    surrogate: Surrogate | None = None
    options: TrainOptions = field(default_factory=TrainOptions)
    scores: dict[str, Any] = field(default_factory=dict)

    def predict(self, measures: np.ndarray) -> np.ndarray:
        """Designs (N, D), SI, clipped to the design bounds, for target measure vectors (N, F), SI."""
        scaled = self.regressor.predict(self.measure_scaler.transform(np.atleast_2d(measures)))
        return np.clip(self.design_scaler.inverse_transform(scaled), self.lower, self.upper)

    def save(self, path: str | Path) -> Path:
        """Write the versioned model file."""
        joblib = require("joblib")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        content = {
            "format": FORMAT, "version": VERSION, "kind": self.kind, "spec": self.spec_name,
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "lower": self.lower.tolist(), "upper": self.upper.tolist(),
            "measure_scaler": self.measure_scaler, "design_scaler": self.design_scaler,
            "regressor": self.regressor.state(), "train_measures": self.train_measures,
            "train_designs": self.train_designs, "options": self.options.to_dict(), "scores": self.scores,
            "surrogate": None if self.surrogate is None else self.surrogate.state(),
        }
        joblib.dump(content, path, compress=3)
        return path

    def check(self, spec: Spec, source: str = "model") -> None:
        """Raise :class:`ModelFileError` unless this model fits ``spec``'s design variables and measures."""
        check_fit(spec, source, self.outputs, self.inputs)
        unknown = [m for m in self.inputs if m not in spec.testbench.measure_names]
        if unknown:
            raise ModelFileError(f"{source}: measures {', '.join(unknown)} are not defined by spec "
                                 f"{spec.name!r}'s testbench")


def read_model_file(path: str | Path, train: str = "optiyield train") -> Any:
    """Whatever a model file holds (unpickled); :class:`ModelFileError` naming the file for a missing one (and
    the ``train`` command that makes one) or an unreadable one."""
    joblib = require("joblib")
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file (train one with `{train}`)")
    try:
        return joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a model file"
        raise ModelFileError(f"{path}: not an optiyield model file ({type(exc).__name__}: {exc})") from None


def check_header(path: str | Path, content: Any, header: str, version: int, train: str) -> dict[str, Any]:
    """``content`` of the model file ``path`` if it has format ``header`` and ``version``; else
    :class:`ModelFileError` (for an older or newer version: retrain with ``train``)."""
    if not isinstance(content, dict) or content.get("format") != header:
        raise ModelFileError(f"{path}: not an optiyield model file (no '{header}' header)")
    if content.get("version") != version:
        raise ModelFileError(f"{path}: model file version {content.get('version')!r}; this optiyield reads "
                             f"version {version}: retrain it with `{train}`")
    return content


def load_inverse(path: str | Path, spec: Spec | None = None) -> InverseModel:
    """Read a model file written by :meth:`InverseModel.save`; with ``spec``, check it fits that spec."""
    return inverse_from_content(path, read_model_file(path), spec)


def inverse_from_content(path: str | Path, content: Any, spec: Spec | None = None) -> InverseModel:
    """The inverse model in the unpickled ``content`` of model file ``path`` (see :func:`load_inverse`)."""
    content = check_header(path, content, FORMAT, VERSION, "optiyield train")
    try:
        model = InverseModel(
            kind=content["kind"], spec_name=content["spec"], inputs=tuple(content["inputs"]),
            outputs=tuple(content["outputs"]), lower=np.asarray(content["lower"], dtype=float),
            upper=np.asarray(content["upper"], dtype=float), measure_scaler=content["measure_scaler"],
            design_scaler=content["design_scaler"], regressor=regressor_from_state(content["regressor"]),
            train_measures=np.asarray(content["train_measures"], dtype=float),
            train_designs=np.asarray(content["train_designs"], dtype=float),
            surrogate=None if content["surrogate"] is None else Surrogate.from_state(content["surrogate"]),
            options=TrainOptions.from_dict(content["options"]), scores=dict(content.get("scores", {})))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: damaged model file ({type(exc).__name__}: {exc})") from None
    if spec is not None:
        model.check(spec, str(path))
    return model


def train_inverse(spec: Spec, data: Dataset, kind: str = "mlp", options: TrainOptions | None = None,
                  test_fraction: float = 0.1, surrogate: bool = True) -> InverseModel:
    """Train an inverse model of ``kind`` on ``data`` (AICircuit protocol by default).

    Scalers are fitted on the training split only; ``scores`` holds the test-split mean absolute error
    in scaled units and the per-variable median relative error of the predicted designs."""
    options = options or TrainOptions()
    if len(data) < 10:
        raise ValueError(f"only {len(data)} successful rows: too few to train a model (sweep more points)")
    split = split_rows(len(data), test_fraction, options.seed)
    x_train, y_train = data.measures[split.train], data.designs[split.train]
    measure_scaler, design_scaler = _scaler(x_train), _scaler(y_train)
    regressor = make_regressor(kind, options)
    losses = regressor.fit(measure_scaler.transform(x_train), design_scaler.transform(y_train))
    lower, upper = spec.design_bounds  # data.design_names is the spec's design order (load_dataset checks it)
    model = InverseModel(kind=kind, spec_name=spec.name, inputs=data.measure_names, outputs=data.design_names,
                         lower=lower, upper=upper, measure_scaler=measure_scaler, design_scaler=design_scaler,
                         regressor=regressor, train_measures=x_train, train_designs=y_train, options=options)
    scores: dict[str, Any] = {"rows": len(data), "train": len(split.train), "test": len(split.test),
                              "dropped": data.dropped, "final_train_loss": losses[-1] if losses else None}
    if len(split.test):
        predicted = model.predict(data.measures[split.test])
        truth = data.designs[split.test]
        scaled_error = np.abs(design_scaler.transform(predicted) - design_scaler.transform(truth))
        scores["test_l1_scaled"] = float(scaled_error.mean())
        relative = np.abs(predicted - truth) / np.maximum(np.abs(truth), 1e-30)
        scores["test_median_rel_error"] = {n: float(v) for n, v in
                                           zip(data.design_names, np.median(relative, axis=0), strict=True)}
    if surrogate:
        model.surrogate = train_surrogate(y_train, x_train)
        if len(split.test):
            predicted = model.surrogate.predict(data.designs[split.test])
            truth = data.measures[split.test]
            scale = np.maximum(np.ptp(x_train, axis=0), 1e-30)
            scores["surrogate_test_mae_over_range"] = {
                n: float(v) for n, v in zip(data.measure_names, np.mean(np.abs(predicted - truth), axis=0) / scale,
                                            strict=True)}
    model.scores = scores
    return model
