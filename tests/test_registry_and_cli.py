"""The registry is complete and consistent; the CLI works end to end and fails cleanly on bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from boundlab.cli import main
from boundlab.theory.registry import CONFIDENCES, KINDS, all_bounds, get


def test_every_bound_is_documented():
    bounds = all_bounds()
    assert len(bounds) >= 15
    for b in bounds:
        assert b.kind in KINDS and b.confidence in CONFIDENCES
        assert b.latex and b.source and b.assumptions, b.name
        area, _, what = b.name.partition(".")
        assert area.isidentifier() and what, f"{b.name}: names are area.what[_variant]"
    with pytest.raises(KeyError, match="unknown bound"):
        get("conv.nope")


def test_the_record_is_the_contract():
    import inspect

    from boundlab.theory.registry import NORMS, BoundValue, docstring_math

    bounds = all_bounds()
    assert any(b.planted for b in bounds) and any(b.expect == "falsified" and not b.planted for b in bounds)
    for b in bounds:
        # the formula is written once: the record's LaTeX is the evaluator's docstring's first math block
        assert b.latex == docstring_math(b.evaluate) and b.latex, b.name
        assert not any(ord(c) < 32 for c in b.latex), b.name  # a non-raw docstring would turn \r into CR
        assert b.norm in NORMS and callable(b.evaluate) and b.function.endswith(b.evaluate.__qualname__)
        assert b.reported_kind == ("falsified" if b.expect == "falsified" else b.kind)
        if b.expect == "falsified":
            assert b.refutation, b.name
        assert b.planted == b.name.startswith("planted.")
        assert inspect.signature(b.evaluate) == inspect.signature(b.evaluate.raw)
    layer_bounds = [b for b in bounds if b.input_type is not None]
    assert {b.input_type.__name__ for b in layer_bounds} >= {"ConvLayer", "AttentionLayer", "FeedForward"}
    # a falsified statement evaluates to kind "falsified": nothing downstream can take it for an upper bound
    from boundlab.theory import attention as A

    q = np.array([[[2.0]]])
    layer = A.AttentionLayer.create(A.AttentionWeights.from_arrays(q, q, np.ones((1, 1, 1)), np.ones((1, 1, 1))),
                                    2, 3.0, attention="l2")
    res = A.l2_attention_bound(layer)
    assert isinstance(res, BoundValue) and res.kind == "falsified" and res.norm == "l2"


def test_theory_does_not_import_torch():
    code = "import sys; from boundlab import theory; theory.all_bounds(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_registered_bound_has_a_verification_property():
    # the table of declared properties (bound_property), not a grep of test sources
    from boundlab.verification.properties import load_property_modules, properties_of

    load_property_modules()
    untested = [b.name for b in all_bounds() if not properties_of(b.name)]
    assert not untested, untested


def test_cli_bounds_json(tmp_path):
    out = tmp_path / "bounds.json"
    assert main(["bounds", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {b["name"] for b in doc["bounds"]} >= {"conv.circular_exact", "attention.kim_l2_2norm"}
    assert "versions" in doc and "commit" in doc


def test_cli_lipschitz_conv(tmp_path):
    k = np.random.default_rng(0).standard_normal((3, 2, 3, 3))
    np.save(tmp_path / "k.npy", k)
    for padding in ("circular", "zeros"):
        out = tmp_path / f"conv_{padding}.json"
        assert main(["lipschitz", "conv", str(tmp_path / "k.npy"), "--input-size", "6", "--padding", padding,
                     "--json", str(out)]) == 0
        rows = json.loads(out.read_text())["results"]
        lower = [r["value"] for r in rows if r["kind"] == "lower"][0]
        uppers = [r["value"] for r in rows if r["kind"] in ("upper", "exact")]
        assert all(lower <= u * (1 + 1e-9) for u in uppers)


def test_cli_lipschitz_attention(tmp_path):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((4, 4)) * 0.5
    np.savez(tmp_path / "w.npz", query=q, key=q, value=rng.standard_normal((4, 4)), output=rng.standard_normal((4, 4)))
    out = tmp_path / "att.json"
    assert main(["lipschitz", "attention", str(tmp_path / "w.npz"), "--tokens", "3", "--radius", "1.5", "--heads",
                 "2", "--restarts", "2", "--steps", "3", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = {(r.get("layer"), r["name"]): r for r in doc["results"]}
    assert doc["config"]["heads"] == 2
    # a statement known to be false is listed with kind falsified (and its refutation), never as an upper bound
    kim = rows[("l2", "attention.kim_l2_2norm")]
    assert kim["kind"] == "falsified" and kim["refutation"]
    lowers = {(r["layer"], r["norm"]): r["value"] for r in doc["results"] if r["kind"] == "lower"}
    for (layer, name), r in rows.items():
        if r["kind"] in ("upper", "exact"):  # every bound is above the lower bound of its own norm and map
            assert lowers[(layer, r["norm"])] <= r["value"] * (1 + 1e-9), name


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["lipschitz", "conv", str(tmp_path / "missing.npy"), "--input-size", "4"]) == 2
    assert "KERNEL: file not found" in capsys.readouterr().err
    np.save(tmp_path / "nan.npy", np.full((1, 1, 2, 2), np.nan))
    assert main(["lipschitz", "conv", str(tmp_path / "nan.npy"), "--input-size", "4"]) == 2
    assert "kernel: expected finite" in capsys.readouterr().err
    np.savez(tmp_path / "w.npz", query=np.ones((2, 2)))
    assert main(["lipschitz", "attention", str(tmp_path / "w.npz"), "--tokens", "2", "--radius", "1"]) == 2
    with pytest.raises(SystemExit):
        main(["lipschitz", "attention", str(tmp_path / "w.npz"), "--tokens", "2", "--radius", "-1"])


def test_cli_verify_subset_writes_summary(tmp_path):
    out = tmp_path / "verify.json"
    code = main(["verify", "--json", str(out), "-k", "circular_exact and not shrunk", "--corpus", str(tmp_path / "c")])
    assert code == 0
    doc = json.loads(out.read_text())
    (prop,) = doc["properties"]
    assert prop["bound"] == "conv.circular_exact" and prop["examples"] >= 1 and not prop["falsified"]
    assert doc["profile"] == "ci"


def test_demo_prints_the_sdp_comparisons_it_writes(tmp_path):
    """The demo's SDP step: the comparison files are in the compare_layer shape and the demo's line reads them."""
    from boundlab.commands.demo import comparison_line
    from boundlab.empirical.sdp_comparison import write_sdp_comparison
    from boundlab.io.results import read_json

    for path in write_sdp_comparison(tmp_path, seed=0):
        line = comparison_line(read_json(path))
        assert "upper bounds " in line and "empirical lower bounds l2 " in line, line
