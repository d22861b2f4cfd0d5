"""Inverse models: save/load round trip, train-split-only scalers, per-sample Transformer, model-file errors.

These use the CSVA spec's design variables and measures with an analytic stand-in dataset: they pin down
the ML mathematics and file format; the flow through ngspice is in test_propose.py."""

from pathlib import Path

import numpy as np
import pytest
from conftest import needs_ml

from optiyield.propose.inverse import (
    Dataset,
    InverseModel,
    ModelFileError,
    load_dataset,
    load_inverse,
    split_rows,
    train_inverse,
)
from optiyield.propose.regressors import KINDS, TrainOptions, make_regressor
from optiyield.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
FAST = TrainOptions(epochs=3, hidden=(16, 16), d_model=16, layers=2, heads=2, trees=10, seed=3)


@pytest.fixture(scope="module")
def csva():
    return load_spec(ROOT / "specs" / "csva.yaml")


def synthetic(spec, n: int = 120, seed: int = 0) -> Dataset:
    """Designs uniform in the CSVA bounds; smooth analytic 'measures' of them (gain, bw, power)."""
    rng = np.random.default_rng(seed)
    lower = np.array([v.min for v in spec.file.design.values()])
    upper = np.array([v.max for v in spec.file.design.values()])
    designs = lower + rng.random((n, len(lower))) * (upper - lower)
    u = (designs - lower) / (upper - lower)
    measures = np.column_stack([5 + 10 * u[:, 2] * u[:, 3], 1e8 * (1 + 3 * u[:, 1]), 1e-4 * (1 + u[:, 0] + u[:, 2])])
    return Dataset(tuple(spec.file.design), tuple(spec.file.specs), designs, measures, dropped=0)


@needs_ml
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_gives_identical_predictions(csva, tmp_path, kind):
    data = synthetic(csva)
    model = train_inverse(csva, data, kind, FAST, surrogate=kind == "mlp")
    path = model.save(tmp_path / f"{kind}.oym")
    again = load_inverse(path, csva)
    queries = data.measures[:17] * 1.01
    assert np.array_equal(model.predict(queries), again.predict(queries))
    assert again.inputs == ("gain_db", "bw", "power") and again.outputs == ("VDD", "Vgate", "W", "Rd")
    assert again.kind == kind and again.spec_name == csva.name
    if kind == "mlp":
        assert np.array_equal(model.surrogate.predict(data.designs[:5]), again.surrogate.predict(data.designs[:5]))
    designs = again.predict(queries)
    assert (designs >= again.lower).all() and (designs <= again.upper).all()


@needs_ml
def test_scalers_are_fitted_on_the_training_split_only(csva):
    data = synthetic(csva, n=100)
    split = split_rows(len(data), 0.1, FAST.seed)
    # make the largest gain and the widest design belong to a test row
    measures, designs = data.measures.copy(), data.designs.copy()
    measures[split.test[0], 0] = 1e3
    designs[split.test[0], 3] = 1e6
    data = Dataset(data.design_names, data.measure_names, designs, measures, 0)
    model = train_inverse(csva, data, "knn", FAST, surrogate=False)
    assert model.measure_scaler.data_max_[0] == pytest.approx(measures[split.train, 0].max())
    assert model.measure_scaler.data_max_[0] < 1e3
    assert model.design_scaler.data_max_[3] == pytest.approx(designs[split.train, 3].max())
    assert len(model.train_measures) == len(split.train) == 90


def test_split_is_seeded_and_disjoint():
    a, b = split_rows(50, 0.1, 7), split_rows(50, 0.1, 7)
    assert np.array_equal(a.test, b.test) and len(a.test) == 5
    assert not set(a.train) & set(a.test) and len(a.train) + len(a.test) == 50


@needs_ml
def test_transformer_prediction_does_not_depend_on_the_rest_of_the_batch():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (64, 3)), rng.uniform(-1, 1, (64, 4))
    model = make_regressor("transformer", FAST)
    model.fit(x, y)
    alone = model.predict(x[:1])
    in_batch = model.predict(np.vstack([x[:1], rng.uniform(-1, 1, (31, 3))]))[:1]
    shuffled = model.predict(np.vstack([rng.uniform(-1, 1, (9, 3)), x[:1]]))[-1:]
    assert np.allclose(alone, in_batch, atol=1e-6) and np.allclose(alone, shuffled, atol=1e-6)


@needs_ml
def test_training_reduces_the_l1_loss():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (200, 2))
    y = np.column_stack([0.5 * x[:, 0] - 0.3 * x[:, 1], x[:, 0] * x[:, 1]])
    losses = make_regressor("mlp", TrainOptions(epochs=40, hidden=(32, 32))).fit(x, y)
    assert losses[-1] < 0.5 * losses[0]


@needs_ml
def test_garbage_file_is_refused_with_a_clear_error(tmp_path):
    bad = tmp_path / "bad.oym"
    bad.write_text("this is not a model\n")
    with pytest.raises(ModelFileError, match="bad.oym: not an optiyield model file"):
        load_inverse(bad)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_inverse(tmp_path / "missing.oym")


@needs_ml
def test_headerless_or_other_version_file_is_refused(tmp_path):
    import joblib

    joblib.dump({"weights": [1, 2, 3]}, tmp_path / "a.oym")
    with pytest.raises(ModelFileError, match="no 'optiyield-inverse-model' header"):
        load_inverse(tmp_path / "a.oym")
    joblib.dump({"format": "optiyield-inverse-model", "version": 99}, tmp_path / "b.oym")
    with pytest.raises(ModelFileError, match="version 99.*retrain"):
        load_inverse(tmp_path / "b.oym")
    joblib.dump({"format": "optiyield-inverse-model", "version": 1, "kind": "mlp"}, tmp_path / "c.oym")
    with pytest.raises(ModelFileError, match="damaged model file"):
        load_inverse(tmp_path / "c.oym")


@needs_ml
def test_model_of_another_spec_or_other_measures_is_refused(csva, tmp_path):
    model: InverseModel = train_inverse(csva, synthetic(csva), "knn", FAST, surrogate=False)
    path = model.save(tmp_path / "csva.oym")
    lna = load_spec(ROOT / "specs" / "lna.yaml")
    with pytest.raises(ModelFileError, match=r"trained for design variables \(VDD, Vgate, W, Rd\)"):
        load_inverse(path, lna)
    other = tmp_path / "spec" / "csva_ugf.yaml"
    other.parent.mkdir()
    text = (ROOT / "specs" / "csva.yaml").read_text().replace("testbench: ../circuits", f"testbench: {ROOT}/circuits")
    other.write_text(text.replace("power:   {max: 850u}", "power:   {max: 850u}\n  ugf: {min: 500M}"))
    with pytest.raises(ModelFileError, match="constrains ugf, which the model does not know"):
        load_inverse(path, load_spec(other))


def test_dataset_from_another_spec_is_refused(csva, tmp_path):
    import pandas as pd

    pd.DataFrame({"C1": [1.0], "gt": [2.0], "status": ["ok"]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="columns VDD, Vgate, W, Rd, gain_db, bw, power are missing"):
        load_dataset(tmp_path / "x.parquet", csva)


def test_a_missing_ml_dependency_says_how_to_install_it():
    from optiyield.propose.regressors import MissingDependency, require

    with pytest.raises(MissingDependency, match=r"pip install -e '\.\[ml\]'.*torch==2\.13\.0"):
        require("optiyield_no_such_ml_module")
