"""TopoLip experiment: verdict rules, result-file format, skip/resume of units, CLI errors.

Orchestration tests replace the topology maths (empirical.topolip, another helper's module) by a small stand-in
that returns the same keys, so they test this module's plumbing only; ``test_real_topology_end_to_end`` runs the
real one."""

import json
import math
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from boundlab.cli import main
from boundlab.empirical import topolip_experiment as X
from boundlab.empirical.robustness import RobustnessConfig
from boundlab.empirical.data import load_dataset


@pytest.fixture(autouse=True)
def _one_thread():
    """2 shared cores: torch's intra-op threads oversubscribe them (10x slower under load); restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------- verdict rules on synthetic units
def _doc(model, seed, variance, topolip, pgd, tln=None):
    layer = {"variance": variance, "id_twonn": 3.0, "id_mle": 3.0,
             "diagram_distance_to_previous": {"H0": {"inf": variance}},
             "topolip": {"A": topolip, "A_normalised": tln if tln is not None else topolip}}
    logits = {"variance": 1e6, "id_twonn": 1e6, "diagram_distance_to_previous": {"H0": {"inf": 1e6}},
              "topolip": {"A": 1e6, "A_normalised": 1e6}}
    return {"status": "finished", "model": model, "seed": seed,
            "epochs": [{"epoch": 1, "clean_accuracy": 0.9, "robustness": {"pgd": {"0.0078": pgd}},
                        "layers": [layer, logits]}]}


def _claim(table, cid):
    return next(c for c in table if c["id"] == cid)


def test_verdicts_supported_contradicted_inconclusive():
    docs = [_doc("attn", 0, 0.1, 1.0, 0.5), _doc("attn", 1, 0.2, 1.0, 0.5),
            _doc("conv", 0, 0.5, 2.0, 0.4), _doc("conv", 1, 0.6, 0.5, 0.4)]
    t = X.verdicts(docs)
    assert _claim(t, "attn_vs_conv.variance")["verdict"] == "supported"          # 0.1<0.5, 0.2<0.6
    assert _claim(t, "attn_vs_conv.topolip")["verdict"] == "inconclusive"        # 1<2 but 1>0.5: seeds disagree
    assert _claim(t, "attn_vs_conv.robust_accuracy")["verdict"] == "supported"   # 0.5 > 0.4
    assert _claim(t, "vit_vs_resnet.variance")["verdict"] == "inconclusive"      # models not run
    # the logits layer (1e6) is excluded from the hidden-layer means (including it would flip nothing but values)
    assert _claim(t, "attn_vs_conv.variance")["values"]["attn"] == [0.1, 0.2]
    flipped = [_doc("attn", s, 0.9, 1.0, 0.5) for s in (0, 1)] + [_doc("conv", s, 0.5, 2.0, 0.4) for s in (0, 1)]
    assert _claim(X.verdicts(flipped), "attn_vs_conv.variance")["verdict"] == "contradicted"
    one_seed = X.verdicts(docs[:1] + docs[2:3])
    assert _claim(one_seed, "attn_vs_conv.variance")["verdict"] == "inconclusive"  # n < 2 seeds
    nulls = [_doc("attn", s, None, 1.0, 0.5) for s in (0, 1)] + [_doc("conv", s, 0.5, 2.0, 0.4) for s in (0, 1)]
    assert _claim(X.verdicts(nulls), "attn_vs_conv.variance")["verdict"] == "inconclusive"


def test_spearman_claim_and_normalised_twin():
    # TopoLip order attn < vit < conv < resnet, robust accuracy in the reverse order: rho = -1 per seed
    vals = {"attn": (1.0, 0.9), "vit": (2.0, 0.7), "conv": (3.0, 0.5), "resnet": (4.0, 0.3)}
    docs = [_doc(m, s, 0.1, t, r, tln=5 - t) for s in (0, 1) for m, (t, r) in vals.items()]
    t = X.verdicts(docs)
    raw, norm = _claim(t, "topolip_vs_robustness.spearman"), _claim(t, "topolip_vs_robustness.spearman_normalised")
    assert raw["verdict"] == "supported" and raw["values"]["rho_per_seed"] == pytest.approx([-1.0, -1.0])
    assert norm["verdict"] == "contradicted" and norm["values"]["rho_per_seed"] == pytest.approx([1.0, 1.0])
    few = X.verdicts([d for d in docs if d["model"] in ("attn", "conv")])
    assert _claim(few, "topolip_vs_robustness.spearman")["verdict"] == "inconclusive"  # < 3 models


# --------------------------------------------------------------------------- orchestration with a stand-in
@dataclass(frozen=True)
class _FakeTopo:
    degrees: tuple = (0, 1)
    orders: tuple = (1, 2, "inf")
    topolip_degree: int = 0
    topolip_order: object = "inf"
    normalise: str = "median"
    id_k: int = 20
    engine: str = "auto"


def _fake_measurements(clean, perturbed, *, config, shifted=None, lipschitz=None, seed=0, fail=None):
    assert len(clean) == len(perturbed) == len(shifted) == len(lipschitz)
    assert all(c.shape == p.shape and c.dtype == np.float64 for c, p in zip(clean, perturbed))
    if fail is not None:
        fail()
    rows = []
    for l in range(1, len(clean)):
        move = float(np.abs(perturbed[l] - clean[l]).max())
        rows.append({"layer": f"layer{l}", "index": l, "dim": clean[l].shape[1],
                     "variance": float(clean[l].var(axis=0).mean()), "id_twonn": None, "id_mle": None,
                     "diagram_distance_to_previous": {"H0": {"1": move, "2": move, "inf": move}},
                     "topolip": {"A": move, "B": move, "C": lipschitz[l], "D": None, "A_normalised": move,
                                 "B_normalised": move},
                     "stability": {"L1_holds": True, "L1_ratio": 0.5, "L3_holds": True, "L3_ratio": 0.1}})
    return rows


@pytest.fixture
def fake_topology(monkeypatch):
    mod = types.ModuleType("boundlab.empirical.topolip")
    mod.TopoConfig = _FakeTopo
    state = {"fail_at": None, "calls": 0}

    def lm(*a, **k):
        state["calls"] += 1
        fail = None
        if state["fail_at"] is not None and state["calls"] == state["fail_at"]:
            def fail():
                raise KeyboardInterrupt  # stands for a kill in the middle of an epoch's probing
        return _fake_measurements(*a, fail=fail, **k)

    mod.layer_measurements = lm
    monkeypatch.setitem(sys.modules, "boundlab.empirical.topolip", mod)
    return state


TINY = X.ExperimentConfig(dataset="digits", image_size=8, models=("attn", "conv"), scale="tiny", epochs=2,
                          probe_epochs=(0, 1, 2), probe=16, seeds=(0,),
                          robustness=RobustnessConfig(eps=(8 / 255,), noise_sigmas=(8 / 255,), pgd_steps=2),
                          target_accuracy=0.15, certify_eps=(2 / 255,), certify_points=1, certify_samples=8,
                          certify_steps=1, sensitivity_probes=(12,), sensitivity_sigmas=(4 / 255,), bootstrap=200)


def test_run_experiment_files_skip_and_resume(tmp_path, fake_topology):
    res = X.run_experiment(TINY, tmp_path)
    units = sorted((tmp_path / "topolip").glob("*/result.json"))
    assert len(units) == 2 and res["path"].is_file()
    doc = json.loads(units[0].read_text())
    for key in ("created", "commit", "versions", "config", "seed", "kind", "status", "model", "dataset",
                "network_upper_bound", "epochs"):
        assert key in doc
    assert doc["kind"] == "topolip_run" and doc["status"] == "finished"
    assert units[0].parent.name.startswith(f"{doc['model']}-digits-s0-")
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1, 2]
    ep = doc["epochs"][-1]
    assert 0 <= ep["clean_accuracy"] <= 1 and set(ep["robustness"]) == {"fgsm", "pgd", "noise"}
    assert ep["layers"][0]["layer"] == ("embed" if doc["model"] == "attn" else "conv1")  # model's names
    assert isinstance(doc["network_upper_bound"], float) and math.isfinite(doc["network_upper_bound"])
    assert doc["config"]["topolip"]["topolip_order"] == "inf" and doc["config"]["probe"]["n"] == 16
    # the new fields: accuracy trace every epoch, the matched checkpoint, brackets and the sensitivity settings
    assert [t["epoch"] for t in doc["accuracy_trace"]] == [0, 1, 2]
    m = doc["matched"]
    assert m["target_accuracy"] == 0.15 and (m["epoch"] is None) == ("reason" in m)
    if m["epoch"] is not None:  # measured in full there, with its brackets and weights
        assert any(e["epoch"] == m["epoch"] and e.get("matched") for e in doc["epochs"])
        assert m["probe_accuracy"] >= 0.15 and (units[0].parent / "weights_matched.pt").is_file()
        assert "2/255" in m["certify"]["per_eps"]
    row = doc["certify"]["per_eps"]["2/255"]
    p = row["points"][0]
    assert row["n_points"] == 1 and p["certified_upper"] >= p["empirical_lower"] > 0
    assert doc["certify"]["global"]["value"] == doc["network_upper_bound"]
    assert [(s["factor"], s["n"]) for s in doc["sensitivity"]] == [("probe", 12), ("sigma", 16)]
    assert all(len(s["layers"]) == len(doc["layer_names"]) - 1 for s in doc["sensitivity"])
    assert (units[0].parent / "weights.pt").is_file() and not (units[0].parent / "checkpoint.pt").exists()
    verd = json.loads(res["path"].read_text())
    assert verd["kind"] == "topolip_verdicts" and {c["verdict"] for c in verd["claims"]} <= {
        "supported", "contradicted", "inconclusive"}
    for c in verd["claims"]:
        assert {"final", "matched", "grid"} <= set(c) and c["grid"]["base"].split(" ")[0] == c["verdict"]
        assert set(c["grid"]) >= {"base", "variant B", "probe 12", "noise 4/255", "eps 2/255"}
    # a radius a metric was not measured at is n/a, not "inconclusive" (attacks at 8/255, brackets at 2/255)
    by_id = {c["id"]: c for c in verd["claims"]}
    assert by_id["attn_vs_conv.robust_accuracy"]["grid"]["eps 2/255"] == "n/a"
    assert by_id["attn_vs_conv.local_lipschitz"]["grid"]["eps 8/255"] == "n/a"
    assert by_id["attn_vs_conv.local_lipschitz"]["grid"]["eps 2/255"] != "n/a"
    # rerun: finished units are skipped (a rerun that retrains would call the measurements again)
    calls = fake_topology["calls"]
    again = X.run_experiment(TINY, tmp_path)
    assert fake_topology["calls"] == calls and all(u.get("skipped") for u in again["units"])
    # a kill during probing of epoch 2 of a new unit (seed 1, attn): resume finishes it with nothing lost
    cfg = X.ExperimentConfig(**{**TINY.__dict__, "seeds": (1,), "models": ("attn",)})
    fake_topology["fail_at"] = fake_topology["calls"] + 3
    with pytest.raises(KeyboardInterrupt):
        X.run_experiment(cfg, tmp_path)
    fake_topology["fail_at"] = None
    done = X.run_experiment(cfg, tmp_path, resume=True)["units"][0]
    assert [e["epoch"] for e in done["epochs"]] == [0, 1, 2] and done["status"] == "finished"
    ref_cfg = X.ExperimentConfig(**{**cfg.__dict__})
    ref = X.run_experiment(ref_cfg, tmp_path / "ref")["units"][0]
    assert done["train_loss"] == ref["train_loss"]  # resumed training = uninterrupted training
    assert done["epochs"][-1]["clean_accuracy"] == ref["epochs"][-1]["clean_accuracy"]
    # the brackets and the matched checkpoint survive the kill unchanged (every draw seeded, BLAS threads fixed)
    assert _same_brackets(done, ref)
    assert done["matched"]["epoch"] == ref["matched"]["epoch"]


def _same_brackets(a, b):
    """Brackets equal up to their timings (seconds differ between runs)."""
    strip = lambda doc: [{k: v for k, v in p.items() if k != "seconds"}  # noqa: E731
                         for r in doc["certify"]["per_eps"].values() for p in r["points"]]
    return strip(a) == strip(b)


def _exit_status(argv) -> int:
    """``main``'s exit status, whether a command returned it or argparse exited (a bad option type)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_cli_errors(tmp_path, fake_topology, capsys):
    base = ["experiment", "topolip", "--out", str(tmp_path), "--epochs", "1", "--image-size", "8"]
    assert main(base + ["--models", "attn,mlp"]) == 2
    assert "mlp" in capsys.readouterr().err
    assert main(base + ["--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 2
    assert "data_batch_1" in capsys.readouterr().err
    assert main(base + ["--probe", "5000"]) == 2
    assert "probe" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert _exit_status(base + ["--device", "cuda"]) == 2  # refused by argparse, before any work
        assert "cuda" in capsys.readouterr().err
    # a corrupted checkpoint with --resume: one line naming the file, exit 2
    data = load_dataset("digits", size=8)
    cfg = X.ExperimentConfig(image_size=8, models=("conv",), scale="small", epochs=1, probe=200, seeds=(0,))
    ucfg = X.unit_config(cfg, "conv", 0, data)
    ck = tmp_path / "topolip" / X.unit_name("conv", "digits", 0, ucfg) / "checkpoint.pt"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"\x00broken")
    assert main(base + ["--models", "conv", "--seeds", "0", "--resume"]) == 2
    assert "checkpoint.pt" in capsys.readouterr().err


@pytest.mark.parametrize("argv, option, echoed", [
    (["--eps", "-1"], "--eps", "'-1'"),                       # the typed value, not -0.0039 on pixel scale
    (["--eps", "2,0"], "--eps", "'0'"),
    (["--eps", "300"], "--eps", "'300'"),                     # > 255/255: beyond the pixel range
    (["--certify-eps", "-2"], "--certify-eps", "'-2'"),
    (["--sensitivity-sigmas", "x"], "--sensitivity-sigmas", "'x'"),
    (["--target-accuracy", "1.5"], "--target-accuracy", "'1.5'"),
    (["--target-accuracy", "0.8,0.9"], "--target-accuracy", "'0.8,0.9'"),
    (["--data-dir", "/nonexistent"], "--data-dir", "cifar10"),  # digits are bundled: never silently ignored
    (["--max-train", "10"], "--max-train", "cifar10"),
    (["--probe-epochs", "0,9"], "--probe-epochs", "[9]"),
    (["--probe", "2"], "--probe", ">= 3"),                    # a config-level check, named by its option
    (["--bootstrap", "5"], "--bootstrap", ">= 100"),
    (["--certify-points", "300"], "--certify-points", "300"),
    (["--epochs", "-1"], "--epochs", ">= 0"),                 # 0 is accepted (no training), so the message says >= 0
    (["--device", "gpu"], "--device", "'gpu'"),               # argparse type of _common.device, before any work
])
def test_cli_bad_input_names_the_option(argv, option, echoed, capsys, monkeypatch):
    import boundlab.empirical.topolip_experiment as mod

    monkeypatch.setattr(mod, "run_experiment", lambda *a, **k: pytest.fail("work started on bad input"))
    code = _exit_status(["experiment", "topolip"] + (["--epochs", "2"] if argv[0] != "--epochs" else []) + argv)
    err = capsys.readouterr()
    assert code == 2 and option in err.err and echoed in err.err and not err.out
    assert "Traceback" not in err.err


def test_cli_config_epochs_zero_help_and_protocol_epochs(capsys):
    import argparse

    from boundlab.commands import experiment as E

    parser = argparse.ArgumentParser()
    E.register(parser.add_subparsers())
    cfg = E._config(parser.parse_args(["experiment", "topolip", "--epochs", "0"]))
    assert cfg.epochs == 0 and cfg.epochs_probed == (0,)  # 0: no training, the initialisation is measured
    # --protocol with another --epochs keeps the protocol's shape (init and final) instead of refusing epoch 12
    cfg = E._config(parser.parse_args(["experiment", "topolip", "--protocol", "--epochs", "3"]))
    assert cfg.epochs == 3 and cfg.epochs_probed == (0, 3) and len(cfg.seeds) == 5
    cfg = E._config(parser.parse_args(["experiment", "topolip", "--eps", "1,2/1", "--target-accuracy", "none"]))
    assert cfg.robustness.eps == pytest.approx((1 / 255, 2 / 255)) and cfg.target_accuracy is None
    topolip = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "experiment"]._subparsers._group_actions[0].choices["topolip"]
    options = [a for a in topolip._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 20
    for a in options:  # every option has help text that states its default
        assert a.help and "default" in a.help, a.option_strings
    with pytest.raises(SystemExit):
        parser.parse_args(["experiment", "topolip", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 means no training" in text and "(default: boundlab-results)" in text and "(default: digits)" in text


def test_cli_log_without_tty_has_no_doubled_blank_lines(tmp_path, capsys, monkeypatch):
    """Outside a terminal (capsys: not a TTY) the progress log is one plain line per event and the verdict table
    follows without runs of blank lines."""
    import boundlab.empirical.topolip_experiment as mod
    from boundlab.io.progress import emit

    docs = [_doc(m, s, 0.1 * (s + 1), 1.0 + s, 0.5) for s in (0, 1) for m in ("attn", "conv", "vit")]

    def fake_run(cfg, out, *, progress=None, **kw):
        emit(progress, "units", 0, 2, "unit a: started")
        emit(progress, "units", 1, 2, "unit a: finished")
        emit(progress, "units", 2, 2)
        return {"units": docs, "verdicts": X.verdicts(docs, n_boot=200), "path": tmp_path / "verdicts.json"}

    monkeypatch.setattr(mod, "run_experiment", fake_run)
    assert main(["experiment", "topolip", "--out", str(tmp_path), "--epochs", "1"]) == 0
    got = capsys.readouterr()
    assert "\n\n" not in got.err and "\n\n" not in got.out.strip("\n")
    assert all(line.startswith("[") for line in got.err.splitlines())  # timestamped plain lines, no bars
    assert "\x1b[" not in got.err and "{v}" not in got.out and "TopoLip claims" in got.out


def test_spearman_metric_names_the_variant():
    vals = {"attn": (1.0, 0.9), "vit": (2.0, 0.7), "conv": (3.0, 0.5)}
    docs = [_doc(m, s, 0.1, t, r) for s in (0, 1) for m, (t, r) in vals.items()]
    for c in X.verdicts(docs, n_boot=200):
        assert "{" not in c["metric"] and "{" not in c.get("detail", ""), c["id"]
    sp = _claim(X.verdicts(docs, n_boot=200, variant="B"), "topolip_vs_robustness.spearman")
    assert "TopoLip variant B, max over hidden layers" in sp["metric"]


def test_real_topology_end_to_end(tmp_path):
    pytest.importorskip("boundlab.empirical.topolip", reason="empirical/topolip.py (topology helper) not present yet")
    cfg = X.ExperimentConfig(**{**TINY.__dict__, "models": ("attn", "conv"), "probe_epochs": (0, 2), "probe": 40})
    res = X.run_experiment(cfg, tmp_path)
    for doc in res["units"]:
        for ep in doc["epochs"]:
            assert len(ep["layers"]) == len(doc["layer_names"]) - 1
            for row in ep["layers"]:
                # the stability lemmas L1/L3 must hold on real data (a pipeline self-test)
                assert row["stability"]["L1_holds"] in (True, None) and row["stability"]["L3_holds"] in (True, None)
                assert set(row["topolip"]) >= {"A", "B", "C", "D", "A_normalised", "B_normalised"}
