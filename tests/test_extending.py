"""A bound package from outside boundlab (tests/data/sample_bounds: one true, one false bound) is handled end to end.

The package is installed for real (``pip install --target``: its entry points ``boundlab.bounds`` and
``boundlab.properties`` are what boundlab discovers), then every consumer is run in a subprocess with it on the
path: ``boundlab bounds`` lists both records, ``boundlab lipschitz conv`` evaluates both on a layer (and its lower
bound exposes the false one), ``boundlab verify`` runs their properties (the true one holds, the false one is
falsified with a saved counterexample, so the run reports an unmet expectation), and the report shows both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SAMPLE = Path(__file__).parent / "data" / "sample_bounds"


@pytest.fixture(scope="module")
def sample_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    src = tmp_path_factory.mktemp("src") / "sample_bounds"  # built from a copy: the checkout stays untouched
    shutil.copytree(SAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _boundlab(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "boundlab", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=cwd)


def test_external_bounds_are_listed_and_evaluated(sample_env, tmp_path):
    out = _boundlab(sample_env, "bounds", "--json", str(tmp_path / "b.json"))
    assert out.returncode == 0, out.stderr
    names = {b["name"] for b in json.loads((tmp_path / "b.json").read_text())["bounds"]}
    assert {"sample.frobenius", "sample.frobenius_no_k"} <= names
    # a constant 1x1-channel 3x3 kernel on a circular grid: exact norm 9 c; ||W||_F = 3 c; sqrt(9) ||W||_F = 9 c
    np.save(tmp_path / "k.npy", np.full((1, 1, 3, 3), 0.5))
    out = _boundlab(sample_env, "lipschitz", "conv", str(tmp_path / "k.npy"), "--input-size", "5",
                    "--json", str(tmp_path / "c.json"))
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads((tmp_path / "c.json").read_text())["results"]}
    assert rows["sample.frobenius"]["tightness"] == pytest.approx(1.0, rel=1e-9)
    assert rows["sample.frobenius_no_k"]["tightness"] == pytest.approx(3.0, rel=1e-9)  # the lower bound exposes it
    assert "contradicted" in out.stdout


def test_external_properties_run_in_verify_and_the_report(sample_env, tmp_path):
    results = tmp_path / "res"
    out = _boundlab(sample_env, "verify", "-k", "sample", "--out", str(results), "--corpus", str(tmp_path / "c"))
    assert out.returncode == 1, out.stdout + out.stderr  # an unmet expectation: the false bound was falsified
    props = {p["bound"]: p for p in json.loads((results / "verify.json").read_text())["properties"]}
    assert set(props) == {"sample.frobenius", "sample.frobenius_no_k"}
    assert not props["sample.frobenius"]["falsified"] and props["sample.frobenius"]["examples"] >= 1
    assert props["sample.frobenius_no_k"]["falsified"] and not props["sample.frobenius_no_k"]["met"]
    assert list((tmp_path / "c" / "sample.frobenius_no_k").glob("*.npz"))  # the shrunk counterexample is saved
    out = _boundlab(sample_env, "report", "--results", str(results))
    assert out.returncode == 0, out.stderr
    html = (results / "report.html").read_text()
    assert "sample.frobenius_no_k" in html and "sample.frobenius" in html
