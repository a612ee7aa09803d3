"""Re-bracketing finished experiment units with the current certificate (no retraining): ``rebracket_unit`` and
``boundlab experiment topolip --rebracket``.

One tiny finished unit (Conv, digits at 8x8, 1 epoch, matched-accuracy checkpoint at epoch 0, brackets at 2/255 and
1/255) is trained once through the CLI; every test works on its own copy. A stale certificate is simulated by
writing looser certified values into the stored brackets (the empirical lowers untouched), a changed unit or
probe by changing a stored empirical lower."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

import boundlab.io.results as results
from boundlab.cli import main
from boundlab.empirical._torch import torch_threads
from boundlab.empirical.topolip_experiment import _units, rebracket_unit
from boundlab.io.errors import CheckError

ARGV = ["experiment", "topolip", "--image-size", "8", "--models", "conv", "--scale", "tiny", "--epochs", "1",
        "--probe-epochs", "1", "--probe", "12", "--seeds", "0", "--eps", "2", "--pgd-steps", "1",
        "--target-accuracy", "0.01", "--certify-eps", "2,1", "--certify-points", "1", "--sensitivity-probes", "none",
        "--sensitivity-sigmas", "none", "--bootstrap", "200"]
STALE = 1e30  # a certified upper no current certificate gives on this unit


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The finished unit (training and re-bracketing fix their own torch threads at the unit's 1)."""
    out = tmp_path_factory.mktemp("trained")
    with torch_threads(1):  # the data loading and verdicts too: 2 shared cores
        assert main(ARGV + ["--out", str(out)]) == 0
    (unit,) = [p.parent for p in (out / "topolip").glob("*/result.json")]
    doc = json.loads((unit / "result.json").read_text())
    assert doc["matched"]["epoch"] == 0 and (unit / "weights_matched.pt").is_file()  # both checkpoints exist
    return out


@pytest.fixture
def out(trained, tmp_path):
    dst = tmp_path / "out"
    shutil.copytree(trained, dst)
    return dst


def _unit(out):
    (unit,) = [p.parent for p in (out / "topolip").glob("*/result.json")]
    return unit


def _blocks(doc):
    return {"final": doc["certify"], "matched": doc["matched"]["certify"]}


def _edit(unit, change):
    path = unit / "result.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))
    return doc


def _make_stale(doc):
    for block in _blocks(doc).values():
        for row in block["per_eps"].values():
            row["certified_upper_gmean"] = STALE
            for p in row["points"]:
                p["certified_upper"] = STALE


def test_rebracket_reproduces_lowers_replaces_uppers_keeps_the_rest(out):
    unit = _unit(out)
    stale = _edit(unit, _make_stale)
    new = rebracket_unit(unit)
    assert json.loads((unit / "result.json").read_text()) == json.loads(results.dumps(new))  # what was written
    assert set(_blocks(new)["final"]["per_eps"]) == {"2/255", "1/255"} and set(_blocks(new)["matched"]["per_eps"]) \
        == {"2/255"}
    for which, block in _blocks(new).items():
        for lab, row in block["per_eps"].items():
            old_row = _blocks(stale)[which]["per_eps"][lab]
            assert [p["empirical_lower"] for p in row["points"]] == pytest.approx(
                [p["empirical_lower"] for p in old_row["points"]], rel=1e-12, abs=0)
            for p in row["points"]:
                assert p["empirical_lower"] > 0 and p["certified_upper"] >= p["empirical_lower"]
                assert p["certified_upper"] < STALE  # recomputed, not copied
    entry = new["rebracketed"]
    assert entry["previous"]["certified_upper_gmean"] == {"final": {"2/255": STALE, "1/255": STALE},
                                                          "matched": {"2/255": STALE}}
    assert entry["previous"]["commit"] == stale["commit"] and entry["commit"] == results.git_commit()
    assert entry["created"] and entry["versions"]["boundlab"] and entry["seconds"] > 0
    # everything else keeps its content, in the same order; the new entry comes last
    assert list(new) == list(stale) + ["rebracketed"]
    for key in stale:
        if key == "certify":
            continue
        if key == "matched":
            assert {k: v for k, v in new[key].items() if k != "certify"} == \
                {k: v for k, v in stale[key].items() if k != "certify"}
        else:
            assert results.dumps(new[key]) == results.dumps(stale[key]), key
    # a second re-bracketing records the first one's values as previous and keeps the first entry
    again = rebracket_unit(unit)
    prev = again["rebracketed"]["previous"]["certified_upper_gmean"]
    assert prev["final"] == {lab: r["certified_upper_gmean"] for lab, r in new["certify"]["per_eps"].items()}
    assert again["rebracketed"]["earlier"] == [entry]


@pytest.mark.parametrize("block", ["final", "matched"])
def test_tampered_empirical_lower_is_refused_and_nothing_written(out, block):
    unit = _unit(out)

    def tamper(doc):
        p = _blocks(doc)[block]["per_eps"]["2/255"]["points"][0]
        p["empirical_lower"] = p["empirical_lower"] * (1 + 1e-6)

    _edit(unit, tamper)
    before = (unit / "result.json").read_bytes()
    where = "matched.certify" if block == "matched" else "certify"
    with pytest.raises(CheckError, match=rf": {where} eps 2/255 point 0: recomputed empirical lower .* differ"):
        rebracket_unit(unit)
    assert (unit / "result.json").read_bytes() == before


def test_missing_config_entry_is_named(out):
    """A unit whose stored config lacks an entry the brackets need (an older format; its weights written for that
    config): refused with the entry named, nothing written."""
    unit = _unit(out)
    doc = _edit(unit, lambda doc: doc["config"]["certify"].pop("samples"))
    for name in ("weights.pt", "weights_matched.pt"):
        state = torch.load(unit / name, weights_only=True)
        torch.save({**state, "config_hash": results.config_hash(doc["config"])}, unit / name)
    before = (unit / "result.json").read_bytes()
    with pytest.raises(ValueError, match=r"lacks the config entry certify\.samples"):
        rebracket_unit(unit)
    assert (unit / "result.json").read_bytes() == before


def test_brackets_current_needs_a_clean_commit():
    doc = {"commit": "a" * 40}
    assert _units.brackets_current(doc, "a" * 40)
    assert not _units.brackets_current(doc, "a" * 40 + "+dirty") and not _units.brackets_current(doc, None)
    doc["rebracketed"] = {"commit": "b" * 40}
    assert _units.brackets_current(doc, "b" * 40) and not _units.brackets_current(doc, "a" * 40)


def test_cli_rebracket_writes_verdicts_resumes_and_refuses_unfinished(out, monkeypatch, capsys):
    unit = _unit(out)
    _edit(unit, _make_stale)
    (out / "topolip" / "verdicts.json").unlink()
    sha = "c" * 40  # a clean tree at commit sha, for both the entry and the skip decision
    monkeypatch.setattr(results, "git_commit", lambda *a, **k: sha)
    monkeypatch.setattr(_units, "git_commit", lambda *a, **k: sha)
    argv = ARGV + ["--out", str(out), "--rebracket"]
    assert main(argv) == 0
    assert "re-bracketed 1 unit(s); 0 already current" in capsys.readouterr().out
    verd = json.loads((out / "topolip" / "verdicts.json").read_text())
    assert verd["kind"] == "topolip_verdicts" and verd["config"]["units"] == [unit.name] and verd["claims"]
    doc = json.loads((unit / "result.json").read_text())
    assert doc["rebracketed"]["commit"] == sha and doc["certify"]["per_eps"]["2/255"]["certified_upper_gmean"] < STALE
    # rerun at the same clean commit: nothing recomputed, the unit file untouched, the verdicts written again
    text = (unit / "result.json").read_text()
    monkeypatch.setattr(_units, "_certify", lambda *a, **k: pytest.fail("a current unit was re-bracketed"))
    assert main(argv) == 0
    assert "re-bracketed 0 unit(s); 1 already current" in capsys.readouterr().out
    assert (unit / "result.json").read_text() == text and (out / "topolip" / "verdicts.json").is_file()
    # --resume has no meaning here; an unfinished unit of the configuration: refused before any work
    assert main(argv + ["--resume"]) == 2 and "--resume" in capsys.readouterr().err
    (unit / "result.json").unlink()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not finished" in err and unit.name in err and "Traceback" not in err


def test_empirical_lower_equality_is_relative():
    """The tolerance of the reproduction check is float noise, not a loose one: 1e-12 passes, 1e-7 fails."""
    block = {"per_eps": {"2/255": {"points": [{"empirical_lower": 10.0}]}}}
    near = {"per_eps": {"2/255": {"points": [{"empirical_lower": 10.0 * (1 + 1e-12)}]}}}
    far = {"per_eps": {"2/255": {"points": [{"empirical_lower": 10.0 * (1 + 1e-7)}]}}}
    _units._check_lowers(block, near, Path("r.json"), "certify")
    with pytest.raises(CheckError):
        _units._check_lowers(block, far, Path("r.json"), "certify")
    with pytest.raises(CheckError):
        _units._check_lowers(block, None, Path("r.json"), "certify")
    assert math.isnan(_units._number(None))
