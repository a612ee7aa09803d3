"""Result files are atomic and self-describing; the corpus round-trips and replays; the ledger reports truthfully."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boundlab.io import results
from boundlab.verification import corpus
from boundlab.verification.cases import Case
from boundlab.verification.ledger import BoundViolation, Ledger


def test_write_json_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    results.write_json(target, {"a": 1})

    def boom(*a, **k):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(RuntimeError):
        results.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}  # the old result survives intact
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_metadata_and_nonfinite_values(tmp_path):
    meta = results.metadata_block({"x": 1}, seed=7)
    assert meta["seed"] == 7 and meta["config"] == {"x": 1}
    assert {"python", "numpy", "torch", "boundlab"} <= set(meta["versions"])
    p = results.write_json(tmp_path / "m.json", {"v": float("inf"), "arr": np.arange(3)})
    assert json.loads(p.read_text()) == {"v": "inf", "arr": [0, 1, 2]}


def test_read_json_names_missing_and_malformed_files(tmp_path):
    with pytest.raises(results.ResultFileError, match="nope.json"):
        results.read_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(results.ResultFileError, match="bad.json"):
        results.read_json(bad)


def test_corpus_roundtrip_and_replay(tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNDLAB_CORPUS", str(tmp_path))
    case = Case({"n": 3, "kind": "x"}, {"kernel": np.arange(6.0).reshape(1, 1, 2, 3)})
    path = corpus.save("unit.test", case)
    assert path.parent == tmp_path / "unit.test"
    (loaded,) = corpus.load("unit.test")
    assert loaded.config == case.config and np.array_equal(loaded["kernel"], case["kernel"])
    assert loaded.digest() == case.digest()
    seen = []

    @settings(max_examples=1, database=None, phases=["explicit"])
    @corpus.replay("unit.test")
    @given(case=st.just(Case({"n": 0}, {})))
    def prop(case):
        seen.append(case.config["n"])

    prop()
    assert seen == [3]  # the saved counterexample ran as an explicit example


def test_ledger_flags_violation_and_writes_summary(tmp_path):
    led = Ledger()
    c = Case({"n": 1}, {"a": np.ones(2)})
    led.check_upper("conv.kernel_matrix", 1.0, 2.0, c, rtol=0.0)
    with pytest.raises(BoundViolation, match="conv.kernel_matrix falsified"):
        led.check_upper("conv.kernel_matrix", 3.0, 2.0, c, rtol=1e-9)
    led.falsified("conv.kernel_matrix", c, "somewhere.json")
    led.check_exact("conv.circular_exact", 2.0, 2.0 * (1 - 1e-12), c, rtol=1e-9)
    out = led.write(tmp_path / "v.json", profile="ci", seed=None)
    doc = json.loads(out.read_text())
    props = {p["bound"]: p for p in doc["properties"]}
    assert props["conv.kernel_matrix"]["falsified"] is True
    assert props["conv.kernel_matrix"]["worst_ratio"] == pytest.approx(1.5)
    assert props["conv.kernel_matrix"]["source"].startswith("standard")
    assert props["conv.circular_exact"]["falsified"] is False
    lines = (tmp_path / props["conv.kernel_matrix"]["observations"]).read_text().splitlines()
    assert len(lines) == 2
    assert [r.bound for r in led.failures()] == ["conv.kernel_matrix"]
