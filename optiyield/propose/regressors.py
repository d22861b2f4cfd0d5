"""Regressors for inverse models and surrogates: torch MLP and Transformer, scikit-learn SVR/RF/KNN.

All of them map scaled inputs (N, F) → scaled outputs (N, T), both in [-1, 1], with one interface:
``fit(X, Y)``, ``predict(X)``, ``state()`` → a picklable dict of plain arrays/estimators, and
:func:`from_state` to rebuild. The torch models follow AICircuit's protocol by default (L1 loss, Adam
1e-3, 100 epochs, batch 100); every setting is a :class:`TrainOptions` field.

The Transformer is a per-sample model: each sample's F metrics are F tokens of its own sequence
(value × learned per-feature vector + per-feature bias, plus a learned summary token), so a prediction
never depends on the other samples in the batch.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

KINDS: tuple[str, ...] = ("mlp", "transformer", "svr", "rf", "knn", "lookup")
INSTALL_HINT = "pip install -e '.[ml]'   (torch==2.13.0 CPU build and scikit-learn)"


class MissingDependency(RuntimeError):
    """An optional ML dependency (torch or scikit-learn) is not installed; the message says how."""


def require(module: str) -> Any:
    """Import an optional dependency or raise :class:`MissingDependency` with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"{module} is needed for inverse models and surrogates: {INSTALL_HINT}") from exc


@dataclass(frozen=True)
class TrainOptions:
    """Training settings. Defaults are AICircuit's: L1 loss, Adam (lr 1e-3), 100 epochs, batch 100;
    MLP hidden layers [200, 300, 500, 500, 300, 200]; Transformer 6 layers, d = 200, 2 heads;
    SVR rbf (one per target); random forest 100 trees; KNN 5 neighbours."""

    epochs: int = 100
    batch_size: int = 100
    learning_rate: float = 1e-3
    loss: Literal["l1", "mse"] = "l1"
    hidden: tuple[int, ...] = (200, 300, 500, 500, 300, 200)
    d_model: int = 200
    heads: int = 2
    layers: int = 6
    dropout: float = 0.1
    trees: int = 100
    neighbours: int = 5
    svr_c: float = 1.0
    svr_epsilon: float = 0.01
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for the model file)."""
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["hidden"] = tuple(data.get("hidden", cls.hidden))
        return cls(**data)


class Regressor(Protocol):
    """Scaled inputs (N, F) → scaled outputs (N, T)."""

    kind: str

    def fit(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        """Train; returns the per-epoch training loss (empty for non-iterative models)."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions, shape (N, T)."""

    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the trained model (picklable)."""


# --------------------------------------------------------------------------------------------- torch


def _torch_modules() -> tuple[Any, Any]:
    torch = require("torch")
    return torch, torch.nn


def _build_mlp(n_in: int, n_out: int, options: TrainOptions) -> Any:
    _, nn = _torch_modules()
    layers: list[Any] = []
    width = n_in
    for h in options.hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _build_transformer(n_in: int, n_out: int, options: TrainOptions) -> Any:
    torch, nn = _torch_modules()

    class PerSampleTransformer(nn.Module):
        """Each sample's F features → F tokens (+ a summary token) → encoder → summary → outputs."""

        def __init__(self) -> None:
            super().__init__()
            d = options.d_model
            self.value_weight = nn.Parameter(torch.randn(n_in, d) * 0.1)
            self.feature_bias = nn.Parameter(torch.randn(n_in, d) * 0.1)
            self.summary = nn.Parameter(torch.zeros(1, 1, d))
            layer = nn.TransformerEncoderLayer(d, options.heads, dim_feedforward=2 * d, dropout=options.dropout,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, options.layers, enable_nested_tensor=False)
            self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, n_out))

        def forward(self, x: Any) -> Any:
            tokens = x.unsqueeze(-1) * self.value_weight + self.feature_bias  # (B, F, d)
            tokens = torch.cat([self.summary.expand(x.shape[0], -1, -1), tokens], dim=1)
            return self.head(self.encoder(tokens)[:, 0])

    return PerSampleTransformer()


class TorchRegressor:
    """MLP or per-sample Transformer trained with mini-batch Adam on an L1 (or MSE) loss."""

    def __init__(self, kind: str, options: TrainOptions, n_in: int | None = None, n_out: int | None = None) -> None:
        self.kind, self.options = kind, options
        self.n_in, self.n_out = n_in, n_out
        self.net: Any = None

    def _build(self) -> Any:
        torch, _ = _torch_modules()
        torch.manual_seed(self.options.seed)
        build = _build_mlp if self.kind == "mlp" else _build_transformer
        return build(int(self.n_in), int(self.n_out), self.options)  # type: ignore[arg-type]

    def fit(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        """Mini-batch training, shuffled each epoch with a seeded generator."""
        torch, nn = _torch_modules()
        self.n_in, self.n_out = x.shape[1], y.shape[1]
        self.net = self._build()
        xt = torch.as_tensor(x, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.float32)
        optimiser = torch.optim.Adam(self.net.parameters(), lr=self.options.learning_rate)
        loss_fn = nn.L1Loss() if self.options.loss == "l1" else nn.MSELoss()
        generator = torch.Generator().manual_seed(self.options.seed)
        losses = []
        self.net.train()
        for _ in range(self.options.epochs):
            order = torch.randperm(len(xt), generator=generator)
            total = 0.0
            for start in range(0, len(xt), self.options.batch_size):
                batch = order[start:start + self.options.batch_size]
                optimiser.zero_grad()
                loss = loss_fn(self.net(xt[batch]), yt[batch])
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            losses.append(total / len(xt))
        self.net.eval()
        return losses

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Evaluation-mode forward pass (no dropout), in float32."""
        torch, _ = _torch_modules()
        with torch.no_grad():
            return self.net(torch.as_tensor(np.atleast_2d(x), dtype=torch.float32)).numpy().astype(float)

    def state(self) -> dict[str, Any]:
        """Layer sizes, options and the weights as numpy arrays (no torch objects in the file)."""
        return {"kind": self.kind, "options": self.options.to_dict(), "n_in": self.n_in, "n_out": self.n_out,
                "weights": {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TorchRegressor:
        """Rebuild from :meth:`state`."""
        torch, _ = _torch_modules()
        model = cls(state["kind"], TrainOptions.from_dict(state["options"]), state["n_in"], state["n_out"])
        model.net = model._build()
        model.net.load_state_dict({k: torch.as_tensor(v) for k, v in state["weights"].items()})
        model.net.eval()
        return model


# ------------------------------------------------------------------------------------------- sklearn


class SklearnRegressor:
    """SVR (rbf, one per target), random forest, KNN, or the 1-nearest-neighbour lookup baseline."""

    def __init__(self, kind: str, options: TrainOptions, estimator: Any = None) -> None:
        self.kind, self.options, self.estimator = kind, options, estimator

    def _make(self) -> Any:
        require("sklearn")
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.multioutput import MultiOutputRegressor
        from sklearn.neighbors import KNeighborsRegressor
        from sklearn.svm import SVR

        o = self.options
        if self.kind == "svr":
            return MultiOutputRegressor(SVR(kernel="rbf", C=o.svr_c, epsilon=o.svr_epsilon))
        if self.kind == "rf":
            return RandomForestRegressor(n_estimators=o.trees, random_state=o.seed)  # 1 job: bit-reproducible
        if self.kind == "knn":
            return KNeighborsRegressor(n_neighbors=o.neighbours)
        return KNeighborsRegressor(n_neighbors=1)

    def fit(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        """Fit the scikit-learn estimator."""
        self.estimator = self._make().fit(x, y)
        return []

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions, shape (N, T)."""
        x = np.atleast_2d(x)
        return np.asarray(self.estimator.predict(x), dtype=float).reshape(len(x), -1)

    def state(self) -> dict[str, Any]:
        """The fitted estimator itself (scikit-learn objects pickle)."""
        return {"kind": self.kind, "options": self.options.to_dict(), "estimator": self.estimator}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SklearnRegressor:
        """Rebuild from :meth:`state`."""
        require("sklearn")
        return cls(state["kind"], TrainOptions.from_dict(state["options"]), state["estimator"])


def make_regressor(kind: str, options: TrainOptions | None = None) -> Regressor:
    """A fresh, untrained regressor of ``kind`` (one of :data:`KINDS`)."""
    options = options or TrainOptions()
    if kind in ("mlp", "transformer"):
        return TorchRegressor(kind, options)
    if kind in ("svr", "rf", "knn", "lookup"):
        return SklearnRegressor(kind, options)
    raise ValueError(f"unknown model {kind!r}; expected one of {', '.join(KINDS)}")


def regressor_from_state(state: dict[str, Any]) -> Regressor:
    """Rebuild a trained regressor from its :meth:`Regressor.state`."""
    if state.get("kind") in ("mlp", "transformer"):
        return TorchRegressor.from_state(state)
    if state.get("kind") in ("svr", "rf", "knn", "lookup"):
        return SklearnRegressor.from_state(state)
    raise ValueError(f"unknown model kind {state.get('kind')!r}")
