"""Local LipSDP bounds (theory/lipsdp_local.py) on trained networks: tighter than the global bound, never below the
Jacobian found inside the region.

Networks: the LipSDP MNIST net (tests/data/lipsdp/mnist_weights.mat, 784-50-10, no biases) at digit-like inputs
(scikit-learn's bundled digits resized to 28 x 28, one test image each of classes 0, 3, 7), and a 64-32-32-10 ReLU MLP
with biases trained here on the bundled 8 x 8 digits (seeded, full-batch Adam, one torch thread). Regions: l_inf
boxes of radius 0.01 around the same points (pixels in [0, 1]).

Measured (issue 16): local / global LipSDP-Neuron 0.641, 0.660, 0.647 on MNIST at the three points, 0.909, 0.711,
0.914 on the digits MLP; the asserted 0.97 leaves room for a different BLAS or torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from boundlab.empirical.data import load_digits
from boundlab.theory import lipsdp as L
from boundlab.theory import lipsdp_local as LL
from boundlab.verification.strategies_lipsdp import region_lower_bound

DATA = Path(__file__).resolve().parent / "data" / "lipsdp"
RADIUS = 0.01
CLASSES = (0, 3, 7)
MAX_RATIO = 0.97


def _points(data, classes=CLASSES) -> list[np.ndarray]:
    x = data.x_test.flatten(1).double()
    return [x[int((data.y_test == k).nonzero()[0, 0])].numpy() for k in classes]


@pytest.fixture(scope="module")
def digits_mlp():
    """A 64-32-32-10 ReLU MLP trained on the bundled digits (seeded; about a second on one thread)."""
    data = load_digits(size=8, seed=0)
    x, y = data.x_train.flatten(1).double(), data.y_train
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                                    torch.nn.ReLU(), torch.nn.Linear(32, 10)).double()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(150):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        with torch.no_grad():
            acc = float((model(data.x_test.flatten(1).double()).argmax(1) == data.y_test).double().mean())
    finally:
        torch.set_num_threads(threads)
    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    net = L.FeedForward.from_weights([m.weight.detach().numpy() for m in lins], "relu")
    return net, [m.bias.detach().numpy() for m in lins], _points(data), acc


def _ratios(net, biases, points):
    glob = L.lipsdp(net, "neuron", method="chordal")
    out = []
    for c in points:
        local = LL.LocalNetwork.create(net, LL.Region.create("linf", c, RADIUS), biases)
        res = LL.lipsdp_local(local)
        lower = region_lower_bound(local, seed=0, samples=16, steps=4)
        assert lower <= res.value * (1 + 1e-9), (lower, res.value)  # sound: never below a Jacobian in the region
        assert res.details.info["stable"] > 0
        out.append(res.value / glob.certified)
    return glob.certified, out


def test_local_tighter_than_global_on_the_lipsdp_mnist_net():
    # wrong code caught: local slopes that ignore stability (ratio 1), unsound intervals (below the lower bound)
    net = L.FeedForward.from_weights(L.load_mat(DATA / "mnist_weights.mat"), "relu")
    glob, ratios = _ratios(net, None, _points(load_digits(size=28, seed=0)))
    print(f"mnist: global {glob:.6g}, local/global at l_inf {RADIUS}: {[round(r, 4) for r in ratios]}")
    assert abs(glob - 24.366) <= 5e-4
    assert all(r <= MAX_RATIO for r in ratios), ratios


def test_local_tighter_than_global_on_a_trained_digits_mlp(digits_mlp):
    net, biases, points, acc = digits_mlp
    assert acc > 0.85  # it is a trained network
    glob, ratios = _ratios(net, biases, points)
    print(f"digits MLP (test accuracy {acc:.3f}): global {glob:.6g}, local/global at l_inf {RADIUS}: "
          f"{[round(r, 4) for r in ratios]}")
    assert all(r <= MAX_RATIO for r in ratios), ratios
