"""The CUDA path of everything the empirical module computes: estimators, training, probing, attacks.

Skipped, with the reason printed, on machines without CUDA (the default CI machine); run on a GPU machine to
exercise it. Without CUDA, asking for it must be a clear error and never a silent CPU fallback: that half runs
everywhere. What these catch: a tensor left on the CPU inside a CUDA run (a device-mismatch error), a result that
records the wrong device, and a CUDA computation that disagrees with the CPU one beyond float tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boundlab.theory.validate import InputError

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available on this machine (no GPU): CUDA path skipped")


def test_cuda_request_is_an_error_without_cuda():
    if CUDA:
        pytest.skip("CUDA is available: the no-CUDA error path cannot be exercised here")
    from boundlab.empirical._torch import resolve_device
    from boundlab.empirical.topolip_experiment import DEMO_CONFIG, run_experiment

    with pytest.raises(InputError, match="cuda"):
        resolve_device("cuda")
    with pytest.raises(InputError, match="cuda"):
        run_experiment(DEMO_CONFIG, "/nonexistent-never-written", device="cuda")


@needs_cuda
def test_models_attacks_and_estimators_on_cuda():
    from boundlab.empirical.lipschitz import local_lipschitz
    from boundlab.empirical.models import build_model, certified_bounds
    from boundlab.empirical.robustness import RobustnessConfig, robustness_report

    torch.manual_seed(0)
    for name in ("attn", "conv", "vit", "resnet"):
        model = build_model(name, channels=3, image_size=16, num_classes=10, mean=(0.5,) * 3, std=(0.25,) * 3,
                            seed=0).to("cuda").eval()
        x = torch.rand(8, 3, 16, 16, device="cuda")
        y = torch.randint(0, 10, (8,), device="cuda")
        outs = model.layer_outputs(x)
        assert all(o.device.type == "cuda" for o in outs)
        rep = robustness_report(model, x, y, RobustnessConfig(eps=(2 / 255,), noise_sigmas=(8 / 255,), pgd_steps=2),
                                seed=0)
        assert 0.0 <= rep["clean"] <= 1.0
        bound = certified_bounds(model)["network"]
        model.double()
        lb = local_lipschitz(model, x.double(), seed=0, device="cuda", max_iter=200).sigma  # points of the pixel box
        assert float(lb.max()) <= bound * (1 + 1e-6)


@needs_cuda
def test_experiment_unit_runs_on_cuda(tmp_path):
    from dataclasses import replace

    from boundlab.empirical.topolip_experiment import DEMO_CONFIG, run_experiment

    cfg = replace(DEMO_CONFIG, models=("conv", "attn"), seeds=(0,), epochs=1, probe_epochs=(1,), probe=40)
    res = run_experiment(cfg, tmp_path, device="cuda")
    for doc in res["units"]:
        assert doc["device"].startswith("cuda")
        layers = doc["epochs"][-1]["layers"]
        assert layers and all(np.isfinite(row["variance"]) for row in layers if row["variance"] is not None)
