"""The statistics of the TopoLip verdicts: bootstrap intervals, the paired sign-flip test, verdicts from intervals,
matched accuracy, the certified end of smoothness claims, and the sensitivity grid (synthetic units, no training)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from boundlab.empirical import topolip_experiment as X
from boundlab.empirical.topolip_experiment._config import ExperimentConfig


# --------------------------------------------------------------------------- the statistics
def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    """Catches an unseeded resampler (different intervals on reruns), an interval that excludes the sample mean, and
    a resampler that draws without replacement (its interval would collapse to the mean)."""
    d = np.array([-0.3, -0.1, 0.2, -0.5, -0.2])
    m1, lo1, hi1 = X.bootstrap_mean_ci(d, 2000, seed=7)
    m2, lo2, hi2 = X.bootstrap_mean_ci(d, 2000, seed=7)
    assert (m1, lo1, hi1) == (m2, lo2, hi2) and math.isclose(m1, d.mean())
    assert d.min() <= lo1 < m1 < hi1 <= d.max()
    assert X.bootstrap_mean_ci(d, 2000, seed=8)[1:] != (lo1, hi1)


def test_sign_flip_test_is_the_exact_permutation_distribution():
    """Against a brute-force enumeration written here, and the closed form 2 / 2^n for differences of one sign."""
    rng = np.random.default_rng(0)
    for n in (3, 5, 6):
        d = rng.standard_normal(n)
        brute = np.mean([abs(np.mean(np.array(s) * d)) >= abs(d.mean()) - 1e-12
                         for s in itertools.product((-1, 1), repeat=n)])
        assert math.isclose(X.sign_flip_test(d), brute)
    d = np.arange(1.0, 6.0)  # all positive, distinct: only the identity and the all-flip reach |mean|
    assert math.isclose(X.sign_flip_test(d), 2 / 2**5)


def test_verdict_comes_from_the_interval_not_the_mean():
    """A mean on the claim's side with an interval across 0 is inconclusive (catches "verdict = sign of the mean")."""
    assert X.verdict_from_interval(-0.5, -0.1, "lower") == "supported"
    assert X.verdict_from_interval(0.1, 0.5, "lower") == "contradicted"
    assert X.verdict_from_interval(-0.5, 0.1, "lower") == "inconclusive"
    assert X.verdict_from_interval(0.1, 0.5, "higher") == "supported"
    a = {s: v for s, v in enumerate([1.0, 1.0, 1.0, 1.0, 10.0])}
    b = {s: 2.0 for s in range(5)}
    res = X.paired(a, b, "log", "lower", 2000, 0)
    assert res["difference"]["mean"] < 0 and res["verdict"] == "inconclusive"  # 4 of 5 agree, the 5th is huge
    assert X.paired({0: 1.0}, {0: 2.0}, "log", "lower", 2000, 0)["verdict"] == "inconclusive"  # one seed
    assert X.paired({0: None, 1: 1.0}, {0: 2.0, 1: 2.0}, "log", "lower", 2000, 0)["verdict"] == "inconclusive"


# --------------------------------------------------------------------------- synthetic units
def _layers(var, tl, tln, dist):
    row = {"variance": var, "id_twonn": 3.0, "diagram_distance_to_previous": {"H0": {"inf": dist}},
           "topolip": {"A": tl, "A_normalised": tln, "B": tl * 2, "B_normalised": tln * 2}}
    logits = {"variance": 1e6, "id_twonn": 1e6, "diagram_distance_to_previous": {"H0": {"inf": 1e6}},
              "topolip": {"A": 1e6, "A_normalised": 1e6, "B": 1e6, "B_normalised": 1e6}}
    return [row, logits]


def _brackets(emp, cert):
    pts = [{"point": i, "empirical_lower": emp, "certified_upper": cert, "ratio": cert / emp} for i in range(2)]
    return {"global": {"value": 1e9}, "per_eps": {"2/255": {"eps": 2 / 255, "points": pts}}}


def _unit(model, seed, *, var=1.0, tl=1.0, tln=1.0, dist=1.0, pgd=0.5, emp=10.0, cert=20.0, acc=0.9,
          m_var=None, sens=None):
    final = {"epoch": 10, "clean_accuracy": acc, "robustness": {"pgd": {"0.0078": pgd, "0.0314": pgd / 2}},
             "layers": _layers(var, tl, tln, dist)}
    matched = {"epoch": 3, "clean_accuracy": 0.8, "robustness": {"pgd": {"0.0078": pgd}},
               "layers": _layers(m_var if m_var is not None else var, tl, tln, dist), "matched": True}
    return {"status": "finished", "model": model, "seed": seed, "epochs": [matched, final],
            "matched": {"target_accuracy": 0.8, "epoch": 3, "probe_accuracy": 0.8, "certify": _brackets(emp, cert)},
            "certify": _brackets(emp, cert), "sensitivity": sens or []}


def _claim(table, cid):
    return next(c for c in table if c["id"] == cid)


def test_five_seed_verdicts_with_intervals_and_matched_accuracy():
    rng = np.random.default_rng(1)
    docs = []
    for s in range(5):
        docs.append(_unit("attn", s, var=0.1 * (1 + 0.1 * rng.random()), m_var=5.0, tl=rng.uniform(0.5, 2)))
        docs.append(_unit("conv", s, var=0.5 * (1 + 0.1 * rng.random()), m_var=0.5, tl=rng.uniform(0.5, 2)))
    t = X.verdicts(docs, n_boot=1000, seed=0)
    var = _claim(t, "attn_vs_conv.variance")
    assert var["verdict"] == "supported" and var["final"]["n"] == 5
    lo, hi = var["final"]["difference"]["ci95"]
    assert lo <= var["final"]["difference"]["mean"] <= hi < 0
    assert 0 < var["final"]["test"]["p"] <= 1
    # at the matched checkpoint the same claim reads the matched epoch's values (attn 5.0 > conv 0.5)
    assert var["matched"]["verdict"] == "contradicted"
    assert var["matched"]["clean_accuracy"]["attn"] == [0.8] * 5
    assert _claim(t, "attn_vs_conv.topolip")["verdict"] == "inconclusive"  # random both ways
    # models not run: inconclusive, with the reason
    assert _claim(t, "vit_vs_resnet.variance")["verdict"] == "inconclusive"


@pytest.mark.parametrize("emp_a,cert_a,emp_b,cert_b,label", [
    (1.0, 2.0, 5.0, 50.0, "supported (certified)"),     # U_a = 2 < L_b = 5 on every seed
    (1.0, 20.0, 5.0, 50.0, "supported (empirical)"),    # only the lower bounds agree
    (50.0, 100.0, 1.0, 20.0, "contradicted (certified)"),  # L_a = 50 > U_b = 20
    (5.0, 50.0, 5.0, 50.0, "inconclusive"),
])
def test_smoothness_claims_are_judged_on_both_ends(emp_a, cert_a, emp_b, cert_b, label):
    """Catches a certified verdict from the empirical values only, or one that compares the wrong ends."""
    docs = []
    for s in range(5):
        j = 1 + 0.05 * (-1) ** s  # seed-to-seed jitter of a, alternating in sign
        docs.append(_unit("attn", s, emp=emp_a * j, cert=cert_a * j))
        docs.append(_unit("conv", s, emp=emp_b, cert=cert_b))
    c = _claim(X.verdicts(docs, n_boot=1000, seed=0), "attn_vs_conv.local_lipschitz")
    if label == "inconclusive":
        assert c["verdict"] == "inconclusive"
    else:
        assert c["label"] == label and c["matched"]["label"] == label


def test_grid_shows_a_claim_that_flips_with_the_probe_size():
    """Sensitivity measurements where Attn's variance is lower at one probe size and higher at another: the grid
    must show both verdicts (and n/a where a setting does not enter the metric)."""
    docs = []
    for s in range(5):
        for model, small, large in (("attn", 0.1, 2.0), ("conv", 0.5, 0.5)):
            sens = [{"factor": "probe", "probe": 50, "n": 50, "sigma": 8 / 255, "layers": _layers(small, 1, 1, 1)},
                    {"factor": "probe", "probe": 99, "n": 90, "sigma": 8 / 255, "layers": _layers(large, 1, 1, 1)},
                    {"factor": "sigma", "probe": 20, "n": 20, "sigma": 2 / 255, "layers": _layers(small, 1, 1, 1)}]
            docs.append(_unit(model, s, var={"attn": 0.1, "conv": 0.5}[model] * (1 + 0.01 * s), sens=sens))
    t = X.verdicts(docs, n_boot=1000, seed=0)
    g = _claim(t, "attn_vs_conv.variance")["grid"]
    assert g["probe 50"] == "supported" and g["probe 99 (whole split: 90)"] == "contradicted"
    assert g["noise 2/255"] == "n/a" and g["eps 2/255"] == "n/a" and g["variant B"] == "n/a"
    assert _claim(t, "attn_vs_conv.robust_accuracy")["grid"]["eps 8/255"] != "n/a"
    assert _claim(t, "attn_vs_conv.topolip")["grid"]["variant B"] != "n/a"


def test_sensitivity_settings_clip_and_skip_the_base():
    cfg = ExperimentConfig(probe=200, topolip_sigma=8 / 255, sensitivity_probes=(200, 500, 1000),
                           sensitivity_sigmas=(2 / 255, 8 / 255))
    st = X.sensitivity_settings(cfg, n_test=599)
    assert [(s["factor"], s["probe"], s["n"]) for s in st] == [("probe", 500, 500), ("probe", 1000, 599),
                                                                ("sigma", 200, 200)]
    assert st[-1]["sigma"] == 2 / 255  # the base (200, 8/255) is the main measurement, not repeated


def test_config_rejects_bad_statistics_options():
    from boundlab.theory.validate import InputError

    for kw, name in (({"target_accuracy": 1.5}, "target_accuracy"), ({"certify_points": 300}, "certify_points"),
                     ({"certify_eps": (-1.0,)}, "certify_eps"), ({"bootstrap": 10}, "bootstrap"),
                     ({"sensitivity_probes": (2,)}, "sensitivity_probes")):
        with pytest.raises(InputError, match=name):
            ExperimentConfig(**kw).validate()
