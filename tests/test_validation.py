"""Bad input gets a clear error naming the argument."""

import math

import numpy as np
import pytest
import torch

from boundlab.empirical import lipschitz as L
from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.wasserstein import wasserstein_uniform
from boundlab.theory import InputError
from boundlab.theory import attention as A
from boundlab.theory import composition as CP
from boundlab.theory import convolution as C

K = np.ones((2, 2, 3, 3))


def W(tied=False, heads=1):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((heads, 3, 2))
    return A.AttentionWeights.from_arrays(q, q if tied else rng.standard_normal((heads, 3, 2)),
                                          rng.standard_normal((heads, 3, 2)))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: C.circular_spectral_norm(np.full((1, 1, 2, 2), np.nan), 4), r"kernel: expected finite"),
        (lambda: C.circular_spectral_norm(np.ones((2, 3, 3)), 4), r"kernel: expected an array with ndim"),
        (lambda: C.circular_spectral_norm(K, 2), r"input_size: the kernel"),
        (lambda: C.circular_spectral_norm(K, 0), r"input_size: expected an integer >= 1"),
        (lambda: C.circular_spectral_norm(np.ones((2, 2, 0, 3)), 4), r"kernel: expected a non-empty"),
        (lambda: C.ConvLayer.create([[[["a"]]]], 4), r"kernel: expected a numeric array"),
        (lambda: C.ConvLayer.create(K, 4, padding=5), r"padding: expected 0 <= P <= k - 1"),
        (lambda: C.ConvLayer.create(K, 4, padding=(1, 3)), r"padding: expected 0 <= P <= k - 1"),
        (lambda: C.ConvLayer.create(K, 4, padding=(1, -1, 0, 0)), r"padding\[1\]: expected an integer >= 0"),
        (lambda: C.ConvLayer.create(K, 4, padding="zeros"), r"padding: expected 'circular', 'same'"),
        (lambda: C.ConvLayer.create(K, 4, stride=0), r"stride: expected an integer >= 1"),
        (lambda: C.kernel_matrix_bound(K), r"layer: expected a ConvLayer"),
        (lambda: C.circular_exact(C.ConvLayer.create(K, 4, 1)), r"layer: conv.circular_exact needs circular"),
        (lambda: C.zero_padded_upper(C.ConvLayer.create(K, 4)), r"layer: conv.zero_padded_upper needs zero"),
        (lambda: C.gram_iteration_bound(C.ConvLayer.create(K, 4), n_iter=-1), r"n_iter"),
        (lambda: A.AttentionLayer.create(W(), 3, -1.0), r"radius: expected a number > 0"),
        (lambda: A.AttentionLayer.create(W(), 0, 1.0), r"n_tokens: expected an integer >= 1"),
        (lambda: A.bounded_dot_product_bound(A.AttentionLayer.create(W(), 3, math.inf)),
         r"layer: attention.bounded_dp needs dot-product attention on a bounded domain"),
        (lambda: A.AttentionLayer.create("weights", 3, 1.0), r"weights: expected AttentionWeights"),
        (lambda: A.bounded_dot_product_bound(W()), r"layer: expected an AttentionLayer"),
        (lambda: A.AttentionLayer.create(W(), 3, attention="l2"), r"weights: L2 attention needs tied"),
        (lambda: A.AttentionLayer.create(W(tied=True), 3, attention="l1"), r"attention: expected one of"),
        (lambda: A.dot_product_blowup_witness(W(), 1, 10.0), r"n_tokens: expected an integer >= 2"),
        (lambda: A.dot_product_blowup_witness(W(heads=2), 3, 10.0), r"weights: the witness is for a single head"),
        (lambda: A.AttentionWeights.from_arrays(np.ones((3, 2)), np.ones((3, 3)), np.ones((3, 2))), r"key: expected the shape"),
        (lambda: A.AttentionWeights.from_arrays(np.ones((3, 3)), np.ones((3, 3)), np.ones((3, 2)), heads=2), r"query: width 3"),
        (lambda: A.AttentionWeights.from_arrays(np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), np.ones((5, 3))), r"output: expected 2 rows"),
        (lambda: CP.layernorm_lipschitz(np.ones(3), 0.0), r"eps: expected a number > 0"),
        (lambda: CP.batchnorm_eval_lipschitz(np.ones(3), -np.ones(3), 1e-5), r"running_var: expected non-negative"),
        (lambda: CP.batchnorm_eval_lipschitz(np.ones(3), np.ones(2), 1e-5), r"running_var: expected shape"),
        (lambda: CP.product_bound([]), r"constants: expected at least one"),
        (lambda: CP.product_bound([1.0, -2.0]), r"constants\[1\]"),
        (lambda: CP.network_bound([CP.attention(W(), 3)]), r"attention needs a bounded input radius"),
        (lambda: L.local_lipschitz(lambda x: x, np.ones(3)), r"x: expected a batch"),
        (lambda: L.local_lipschitz(lambda x: x, np.full((2, 3), np.inf)), r"x: expected finite"),
        (lambda: L.local_lipschitz(lambda x: x, np.ones((2, 3)), device="cuda:0" if not torch.cuda.is_available() else "tpu"), r"device:"),
        (lambda: L.global_lipschitz_lower_bound(lambda x: x, (2, 3), 0.0), r"radius: expected a number > 0"),
        (lambda: L.global_lipschitz_lower_bound(lambda x: x, (2, 3), 1.0, seed=1.5), r"seed: expected an integer"),
        (lambda: L.global_lipschitz_lower_bound(lambda x: x, (2, 3), 1.0, inits=np.ones((1, 3, 3))), r"inits: expected shape"),
        (lambda: L.conv_operator_norm(C.ConvLayer.create(K, 4), method="svd"), r"method: expected one of"),
        (lambda: C.ConvLayer.create(K, 2, "circular"), r"input_size: circular padding"),
        (lambda: L.conv_operator_norm(K), r"layer: expected a ConvLayer"),
        (lambda: wasserstein_uniform(np.ones((0, 2)), np.ones((3, 2))), r"x: expected a non-empty"),
        (lambda: wasserstein_uniform(np.ones((2, 2)), np.ones((3, 3))), r"y: expected 2 columns"),
        (lambda: dot_product_attention("w"), r"weights: expected AttentionWeights"),
    ],
)
def test_bad_input_names_argument(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_cuda_request_without_cuda_is_an_error_not_a_fallback():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here; the no-fallback error only applies without it")
    with pytest.raises(InputError, match="cuda.*is_available"):
        L.local_lipschitz(lambda x: 2 * x, np.ones((2, 3)), device="cuda")
