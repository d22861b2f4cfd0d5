"""The evaluation store: exact-row keys, duplicates, NaN round trip, fingerprint protection, journal."""

import numpy as np
import pytest

from optiyield.store import Store, StoreMismatch


def test_lookup_serves_every_duplicate_row_and_nan(tmp_path):
    store = Store(tmp_path / "s.sqlite", "fp", ("a", "b"), ("m",))
    rows = np.array([[1.0, 2.0], [3.0, 4.0]])
    store.save(rows, {"m": np.array([0.5, np.nan])}, np.array(["ok", "failed"], dtype=object),
               np.array(["", "why"], dtype=object))
    query = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    found, values, status, reason = store.lookup(query)
    assert found.tolist() == [True, True, True, False]
    assert values["m"][:2].tolist() == [0.5, 0.5] and np.isnan(values["m"][2]) and np.isnan(values["m"][3])
    assert status.tolist()[:3] == ["ok", "ok", "failed"] and reason[2] == "why"


def test_keys_are_exact_bytes(tmp_path):
    store = Store(tmp_path / "s.sqlite", "fp", ("a",), ("m",))
    store.save(np.array([[0.1]]), {"m": np.array([1.0])}, np.array(["ok"], dtype=object), np.array([""], dtype=object))
    found, *_ = store.lookup(np.array([[0.1 + 1e-18], [np.nextafter(0.1, 1)]]))
    assert found.tolist() == [True, False]  # 0.1 + 1e-18 == 0.1 in float64; the next float is another row


def test_other_fingerprint_is_refused_and_journal_round_trips(tmp_path):
    store = Store(tmp_path / "s.sqlite", "fp", ("a",), ("m",))
    store.journal("step", 3, {"x": np.float64(1.5), "arr": np.arange(2)})
    assert store.history("step") == [{"iteration": 3, "x": 1.5, "arr": [0, 1]}]
    store.close()
    with pytest.raises(StoreMismatch, match="different testbench"):
        Store(tmp_path / "s.sqlite", "other", ("a",), ("m",))
