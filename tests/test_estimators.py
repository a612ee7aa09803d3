"""Empirical estimators on maps whose constants are known exactly."""

import numpy as np
import pytest
import torch

from boundlab.theory.convolution import ConvLayer, conv_matrix

from boundlab.empirical import lipschitz as L

rng = np.random.default_rng(0)
M = rng.standard_normal((5, 4))
SIGMA = np.linalg.svd(M, compute_uv=False)[0]
MT = torch.as_tensor(M)


def linear(x):
    return x @ MT.T


def test_local_lipschitz_of_linear_map():
    res = L.local_lipschitz(linear, np.ones((3, 4)), tol=1e-10, max_iter=5000)
    assert res.converged.all()
    assert np.all(res.sigma <= SIGMA * (1 + 1e-12))
    assert np.allclose(res.sigma, SIGMA, rtol=1e-6)


def test_local_lipschitz_is_lower_bound_even_when_capped():
    res = L.local_lipschitz(linear, np.ones((3, 4)), max_iter=1)
    assert res.iterations == 1
    assert np.all(res.sigma <= SIGMA * (1 + 1e-12))


def test_local_lipschitz_batches_are_independent():
    def f(x):  # per-sample scaling: sample b multiplied by (b + 1)
        scale = torch.arange(1, x.shape[0] + 1, dtype=x.dtype).view(-1, 1)
        return x * scale

    res = L.local_lipschitz(f, np.ones((4, 3)))
    assert np.allclose(res.sigma, [1, 2, 3, 4], rtol=1e-9)


def test_dense_jacobian_and_norms():
    j = L.dense_jacobian(linear, np.zeros((2, 4)))
    assert np.allclose(j[0], M)
    assert L.jacobian_norm(linear, np.zeros((1, 4)), "inf")[0] == pytest.approx(np.abs(M).sum(1).max())


def test_global_search_on_tanh_finds_origin_slope():
    # Lip of x -> tanh(a x) on any ball is a (attained at 0)
    res = L.global_lipschitz_lower_bound(lambda x: torch.tanh(3.0 * x), (1, 1), 2.0, restarts=4, steps=20, seed=1)
    assert 2.9 <= res.lower_bound <= 3.0 * (1 + 1e-9)


def test_conv_operator_norm_matches_dense_matrix():
    # every padding amount (also asymmetric) and both strides against the dense matrix of the same layer
    k = rng.standard_normal((2, 3, 3, 3))
    for padding, stride in ((1, 2), (2, 1), ((0, 2, 1, 0), 2), ("circular", 1), ("same", 2)):
        layer = ConvLayer.create(k, 5, padding, stride)
        op = L.conv_operator(layer)
        dense = L.dense_jacobian(op, np.zeros((1, 3, 5, 5)))[0]
        assert dense.shape[0] == 2 * layer.output_size[0] * layer.output_size[1]
        assert np.allclose(dense, conv_matrix(layer), atol=1e-12)  # torch and the theory agree on the layer
        truth = np.linalg.svd(dense, compute_uv=False)[0]
        assert L.conv_operator_norm(layer) == pytest.approx(truth, rel=1e-9)
        assert L.conv_operator_norm(layer, method="power", n_iter=500) <= truth * (1 + 1e-12)


def test_seeds_make_search_reproducible():
    f = lambda x: torch.sin(x).sum(-1, keepdim=True)  # noqa: E731
    a = L.global_lipschitz_lower_bound(f, (2, 3), 1.0, seed=5, restarts=3, steps=3)
    b = L.global_lipschitz_lower_bound(f, (2, 3), 1.0, seed=5, restarts=3, steps=3)
    assert a.lower_bound == b.lower_bound
    assert np.array_equal(a.argmax, b.argmax)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_cuda_path_matches_cpu():
    x = np.random.default_rng(1).standard_normal((3, 4))
    cpu = L.local_lipschitz(linear, x, tol=1e-10, max_iter=3000).sigma
    mt = MT.cuda()
    gpu = L.local_lipschitz(lambda z: z @ mt.T, x, tol=1e-10, max_iter=3000, device="cuda").sigma
    assert np.allclose(cpu, gpu, rtol=1e-6)
    k = np.random.default_rng(2).standard_normal((4, 4, 3, 3))
    assert L.conv_operator_norm(k, 8, device="cuda") == pytest.approx(L.conv_operator_norm(k, 8), rel=1e-8)
