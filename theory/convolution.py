r"""Lipschitz constants (spectral norms) of 2-D multichannel convolutions.

Conventions
-----------
* ``kernel`` has the PyTorch layout ``(c_out, c_in, k_h, k_w)`` and the layer computes the cross-correlation
  :math:`y_{o,p} = \sum_{i,u} W_{o,i,u}\, x_{i, p+u}` (flipping a kernel does not change any singular value).
* The Lipschitz constant is taken in the Euclidean norm of the flattened tensors, i.e. the spectral norm
  :math:`\|T_W\|_2` of the linear map :math:`T_W`; a bias does not change it.
* ``input_size`` is ``n`` or ``(h, w)``, the spatial size of the input.

What each function covers
-------------------------
=================================  ====================  ==================  =======================
function                           padding               stride              value
=================================  ====================  ==================  =======================
``circular_spectral_norm``         circular              1                   exact
``circular_singular_values``       circular              1                   exact (all of them)
``zero_padded_upper_bound``        zeros, any p < k      any (see below)     upper bound
``kernel_matrix_bound``            any                   any                 upper bound
``four_reshape_bound``             any                   any                 upper bound
``gram_iteration_bound``           circular; zeros via   any                 upper bound
                                   ``grid`` = n + p
=================================  ====================  ==================  =======================

A strided convolution is a stride-1 convolution followed by sub-sampling, a coordinate projection of norm 1, so
every stride-1 *upper* bound is also an upper bound for any stride (loose by up to the sub-sampling factor).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.linalg

from .validate import InputError, as_real_array, pair_of_ints, positive_int
from .numerics import round_up, spectral_norm
from .registry import register

__all__ = [
    "kernel_matrix",
    "circular_frequency_blocks",
    "circular_singular_values",
    "circular_spectral_norm",
    "zero_padded_upper_bound",
    "kernel_matrix_bound",
    "four_reshape_bound",
    "gram_iteration_bound",
    "conv_matrix",
]


def _kernel(kernel) -> np.ndarray:
    k = as_real_array("kernel", kernel, ndim=4)
    return k


def _grid(kernel: np.ndarray, input_size, name: str = "input_size") -> tuple[int, int]:
    h, w = pair_of_ints(name, input_size)
    kh, kw = kernel.shape[2:]
    if kh > h or kw > w:
        raise InputError(
            f"{name}: the kernel ({kh}x{kw}) must fit in the input grid, got {h}x{w}"
        )
    return h, w


def kernel_matrix(kernel) -> np.ndarray:
    r"""The im2col matrix :math:`W_{mat}\in\mathbb R^{c_{out}\times c_{in}k_hk_w}` of a kernel."""
    k = _kernel(kernel)
    return k.reshape(k.shape[0], -1)


def circular_frequency_blocks(kernel, input_size) -> np.ndarray:
    r"""The matrices :math:`\hat W(\omega)\in\mathbb C^{c_{out}\times c_{in}}` for every frequency of the grid.

    :math:`\hat W(\omega) = \sum_u W_u e^{-2\pi i\langle \omega, u\rangle / n}` (the 2-D DFT of the kernel
    zero-padded to the grid). For a real kernel, :math:`\hat W(-\omega)=\overline{\hat W(\omega)}` has the same
    singular values, so only the half-spectrum of ``rfft2`` is returned: shape ``(h, w//2+1, c_out, c_in)``.
    """
    k = _kernel(kernel)
    h, w = _grid(k, input_size)
    return scipy.fft.rfft2(np.ascontiguousarray(k.transpose(2, 3, 0, 1)), s=(h, w), axes=(0, 1), workers=-1)


@register(
    "conv.circular_singular_values",
    kind="exact",
    latex=r"\sigma(T_W) = \bigcup_{\omega\in\{0..n-1\}^2}\sigma\big(\hat W(\omega)\big)",
    assumptions=("circular padding", "stride 1", "kernel fits in the grid"),
    source="Sedghi, Gupta, Long, The Singular Values of Convolutional Layers, ICLR 2019, Thm 6",
    confidence="standard",
    covers="circular padding, stride 1",
)
def circular_singular_values(kernel, input_size) -> np.ndarray:
    r"""All singular values of the circular convolution, sorted in decreasing order.

    .. math:: \sigma(T_W) = \bigcup_{\omega}\sigma\big(\hat W(\omega)\big)

    with multiplicity (the conjugate half of the spectrum is restored). Exact up to float64 rounding.

    References: Sedghi, Gupta, Long (2019), *The Singular Values of Convolutional Layers*, ICLR.
    """
    k = _kernel(kernel)
    h, w = _grid(k, input_size)
    full = np.fft.fft2(k, s=(h, w), axes=(2, 3)).transpose(2, 3, 0, 1)
    sv = np.linalg.svd(full, compute_uv=False).ravel()
    return np.sort(sv)[::-1]


def _gram_frobenius_bound(b: np.ndarray, n_iter: int) -> np.ndarray:
    r"""Per-block :math:`\|G_t\|_F^{2^{-t}}` with :math:`G_{t}=G_{t-1}^HG_{t-1}`, rescaled against overflow.

    :math:`\sigma_1(B)^{2^t} = \sigma_1(G_t) \le \|G_t\|_F`, so every iterate is an upper bound and the bound
    converges quadratically to :math:`\sigma_1` (Delattre et al. 2023).
    """
    g = b.astype(np.complex128 if np.iscomplexobj(b) else np.float64, copy=True)
    log_scale = np.zeros(g.shape[0])
    for _ in range(n_iter):
        r = np.linalg.norm(g, axis=(1, 2))
        r = np.where(r == 0, 1.0, r)
        g = g / r[:, None, None]
        log_scale = 2.0 * (log_scale + np.log(r))
        g = np.conj(np.swapaxes(g, -1, -2)) @ g
    fro = np.linalg.norm(g, axis=(1, 2))
    with np.errstate(divide="ignore"):
        logs = (log_scale + np.log(fro)) / (2.0**n_iter)
    return np.exp(logs)


_UNIT_ROUNDOFF = 2.0**-53


_THREADPOOLS: list = []


def _blas_single_thread():
    """Context manager limiting BLAS to one thread (small-matrix LAPACK calls; threads only add contention).

    Uses ``threadpoolctl`` (installed with scikit-learn) when available, else does nothing.
    """
    import contextlib

    if not _THREADPOOLS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            _THREADPOOLS.append(None)
        else:
            _THREADPOOLS.append(ThreadpoolController())
    controller = _THREADPOOLS[0]
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


def _tap_autocorrelation(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    r"""Half of the kernel autocorrelation :math:`R_\delta=\sum_u W_u^\top W_{u+\delta}` (real, ``c_in x c_in``).

    ``w`` has layout ``(k_h, k_w, c_out, c_in)``. Returns the offsets :math:`\delta` of a half plane (``(0, 0)``
    first; :math:`R_{-\delta}=R_\delta^\top` gives the rest), the stack of :math:`R_\delta`, and the largest inner
    dimension of the products (``c_out`` times the number of overlapping taps), used in the error bound.
    """
    kh, kw, co, ci = w.shape
    offsets, mats, inner = [], [], 1
    for a in range(kh):
        for b in range(-(kw - 1), kw):
            if a == 0 and b < 0:
                continue
            x = w[: kh - a, max(0, -b): kw - max(0, b)]  # W_u
            y = w[a:, max(0, b): kw - max(0, -b)]  # W_{u+delta}
            m = x.shape[0] * x.shape[1] * co
            inner = max(inner, m)
            mats.append(x.reshape(m, ci).T @ y.reshape(m, ci))
            offsets.append((a, b))
    return np.array(offsets), np.stack(mats), inner


def _dft_phases(offsets: np.ndarray, h: int, w: int) -> np.ndarray:
    r"""Angles :math:`2\pi(\omega_1\delta_1/h+\omega_2\delta_2/w)` for the rfft2 half-spectrum (rows) and offsets.

    The integer part is reduced exactly (mod h, mod w) first, so every angle lies in [0, 4π) with a relative
    error of a few units in the last place.
    """
    w1 = np.arange(h)[:, None, None]
    w2 = np.arange(w // 2 + 1)[None, :, None]
    num = (w1 * offsets[None, None, :, 0]) % h * w + (w2 * offsets[None, None, :, 1]) % w * h
    return (2.0 * np.pi / (h * w)) * num.reshape(-1, len(offsets)).astype(np.float64)


def _frequency_block(w: np.ndarray, h: int, wd: int, index: int) -> np.ndarray:
    r""":math:`\hat W(\omega)` for one half-spectrum index (rfft2 row-major order), by the direct DFT of the taps."""
    kh, kw = w.shape[:2]
    w1, w2 = divmod(index, wd // 2 + 1)
    ph = np.exp(-2j * np.pi * (((w1 * np.arange(kh)) % h)[:, None] / h + ((w2 * np.arange(kw)) % wd)[None, :] / wd))
    return np.tensordot(ph, w, axes=([0, 1], [0, 1]))


def _circular_norm_pruned(k: np.ndarray, h: int, w: int) -> tuple[float, dict]:
    r"""Certified-pruning evaluation of :math:`\max_\omega\sigma_{\max}(\hat W(\omega))^2`; see
    :func:`circular_spectral_norm` for the algorithm and its soundness proof. Returns (value, statistics)."""
    co, ci = k.shape[:2]
    wk = k.transpose(2, 3, 0, 1)  # (kh, kw, co, ci)
    if co < ci:  # work with the smaller Gram: B(w)^T has the same singular values
        wk = wk.transpose(0, 1, 3, 2)
        co, ci = ci, co
    wk = np.ascontiguousarray(wk)
    n = ci
    fro2 = float(np.sum(wk * wk))
    offsets, r, inner = _tap_autocorrelation(wk)
    theta = _dft_phases(offsets, h, w)  # (N, m)
    rt = np.swapaxes(r, 1, 2)
    sym = r + rt
    sym[0] = r[0]
    anti = (r - rt)[1:]
    nblk, m = theta.shape
    # -G(w) = -R_0 - sum_{delta in half plane} (R_d + R_d^T) cos + i (R_d - R_d^T) sin, written in place
    neg_g = np.empty((nblk, n, n), dtype=np.complex128)
    parts = neg_g.view(np.float64).reshape(nblk, n * n, 2)
    cos_t = np.cos(theta)
    np.matmul(cos_t, -sym.reshape(m, -1), out=parts[:, :, 0])
    if m > 1:
        np.matmul(np.sin(theta[:, 1:]), anti.reshape(m - 1, -1), out=parts[:, :, 1])
    else:  # 1x1 kernel: G(w) = R_0 is real
        parts[:, :, 1] = 0.0
    trace = cos_t @ np.trace(sym, axis1=1, axis2=2)
    # rounding budget (docstring): ||G_hat - G||_2 <= eps_g, Cholesky backward error factor n * gamma_c
    n_delta = (2 * k.shape[2] - 1) * (2 * k.shape[3] - 1)
    eps_g = 2.0 * n_delta * ((inner + 2) * _UNIT_ROUNDOFF * 1.01 + 64 * _UNIT_ROUNDOFF) * fro2
    gamma_c = 8 * (n + 1) * _UNIT_ROUNDOFF / (1 - 8 * (n + 1) * _UNIT_ROUNDOFF)
    # the columns w2 = 0 and w2 = w/2 of the half-spectrum hold conjugate pairs (w1, w2) ~ (h - w1, w2), whose
    # blocks are complex conjugates (same singular values): keep one of each (w1 <= h/2)
    w1_idx, w2_idx = np.divmod(np.arange(nblk), w // 2 + 1)
    redundant = ((w2_idx == 0) | (2 * w2_idx == w)) & (2 * w1_idx > h)
    order = np.flatnonzero(~redundant)[np.argsort(-trace[~redundant], kind="stable")]
    best = -1.0
    stats = {"blocks": int(order.size), "pruned_by_trace": 0, "certified_by_cholesky": 0, "exact": 0}
    for idx in order:
        if best > 2 * eps_g:
            if trace[idx] + (n + 1) * eps_g < best:
                stats["pruned_by_trace"] += 1
                continue  # lambda_max <= tr G < best
            tau = (best - 2 * eps_g) / (1 + 2 * n * gamma_c)
            a = neg_g[idx]  # becomes tau I - G(w), factorised in place (the block is not needed again)
            a.reshape(-1)[:: n + 1] += tau
            # a.T is the Fortran-ordered view of a^T = conj(a): Hermitian, positive definite iff a is
            _, info = scipy.linalg.lapack.zpotrf(a.T, lower=True, clean=False, overwrite_a=True)
            if info == 0:
                stats["certified_by_cholesky"] += 1
                continue  # tau I - G(w) positive definite: lambda_max(G(w)) <= best
        stats["exact"] += 1
        sv = np.linalg.svd(_frequency_block(wk, h, w, int(idx)), compute_uv=False)[0]
        best = max(best, float(sv) ** 2)
    return math.sqrt(best), stats


@register(
    "conv.circular_exact",
    kind="exact",
    latex=r"\|T_W\|_2 = \max_{\omega\in\{0..n-1\}^2}\sigma_{\max}\big(\hat W(\omega)\big)",
    assumptions=("circular padding", "stride 1", "kernel fits in the grid"),
    source="Sedghi, Gupta, Long, The Singular Values of Convolutional Layers, ICLR 2019",
    confidence="standard",
    covers="circular padding, stride 1",
)
def circular_spectral_norm(kernel, input_size, method: str = "auto") -> float:
    r"""Exact spectral norm of the circular convolution on an ``input_size`` grid.

    .. math:: \|T_W\|_2 = \max_{\omega}\sigma_{\max}\big(\hat W(\omega)\big)

    (Sedghi et al. 2019). Only the half-spectrum of ``rfft2`` is needed: for a real kernel
    :math:`\hat W(-\omega)=\overline{\hat W(\omega)}` has the same singular values. Returns the float64 value, not
    rounded outward: use :func:`theory.numerics.round_up` (or :func:`zero_padded_upper_bound`) where a sound upper
    bound is needed.

    ``method``:

    * ``"svd"``: one batched SVD of all half-spectrum blocks.
    * ``"pruned"``: the same maximum with certified pruning, exact SVDs only where needed.
    * ``"auto"`` (default): ``"pruned"`` when :math:`\min(c_{in},c_{out})\ge 16`, else ``"svd"``.

    **Pruned algorithm.** Let :math:`G(\omega)=\hat W(\omega)^H\hat W(\omega)` (on the smaller channel side), so
    :math:`\sigma_{\max}(\hat W(\omega))^2=\lambda_{\max}(G(\omega))`. With the kernel autocorrelation
    :math:`R_\delta=\sum_uW_u^\top W_{u+\delta}` (:math:`R_{-\delta}=R_\delta^\top`),

    .. math:: G(\omega)=\sum_\delta R_\delta e^{-2\pi i\langle\omega,\delta\rangle/n}
              = R_0+\sum_{\delta\in\text{half plane}}(R_\delta+R_\delta^\top)\cos\theta_\delta
              - i(R_\delta-R_\delta^\top)\sin\theta_\delta ,

    two real matrix products of :math:`(2k_h-1)(2k_w-1)/2` terms, far cheaper than forming :math:`\hat W^H\hat W`
    block by block. Conjugate pairs left in the half-spectrum (columns :math:`\omega_2\in\{0,w/2\}`) are visited
    once. Blocks are visited in decreasing order of :math:`\operatorname{tr}G(\omega)`, keeping
    :math:`b` = the largest :math:`\sigma_{\max}^2` computed so far by an exact SVD of :math:`\hat W(\omega)`
    (direct DFT of the taps). A block is skipped when it is *certified* not to exceed :math:`b`:

    * trace test: :math:`\lambda_{\max}(G)\le\operatorname{tr}G`, so :math:`\widehat{\operatorname{tr}}+(n+1)
      \varepsilon_G<b` suffices;
    * Cholesky test: the LAPACK Cholesky factorisation of :math:`\tau I-\hat G(\omega)` with
      :math:`\tau=(b-2\varepsilon_G)/(1+2n\gamma_c)` succeeds.

    Any other block gets the exact SVD and updates :math:`b`. The returned :math:`\sqrt b` is the maximum of
    the exactly computed blocks, and every skipped block has :math:`\lambda_{\max}(G(\omega))\le b`, so the
    result is the same maximum the unpruned SVD returns, with the same float64 accuracy (it is never below the
    true value beyond the rounding of the SVDs). Only a block whose value lies within :math:`\approx10^{-11}`
    relative of :math:`b` (e.g. exact ties) is evaluated although it could not change the result.

    *Soundness of the Cholesky test.* Rounding: :math:`\|\hat G-G\|_2\le\varepsilon_G
    =2n_\delta\big((m+2)u\cdot1.01+64u\big)\|W\|_F^2`, where :math:`n_\delta=(2k_h-1)(2k_w-1)`, m is the
    inner dimension of the products forming :math:`R_\delta` (standard dot-product error
    :math:`\gamma_m|X^\top||Y|`, whose Frobenius norm is at most :math:`\gamma_m\|W\|_F^2`, as is
    :math:`\|R_\delta\|_2`), and 64u covers the phases (reduced exactly mod n, so :math:`\theta<4\pi`), their
    cosines and sines, and the sums of at most :math:`n_\delta` terms; real and imaginary parts give the factor 2.
    If Cholesky completes in floating point on the Hermitian matrix A (one triangle read), then
    :math:`A+\Delta A` is positive definite with :math:`|\Delta A|\le\gamma_c|\hat R^H||\hat R|`
    (Higham, *Accuracy and Stability of Numerical Algorithms*, Thm 10.3; :math:`\gamma_c=8(n+1)u/(1-8(n+1)u)`
    allows for complex arithmetic), hence :math:`\|\Delta A\|_2\le\gamma_c\|\hat R\|_F^2
    \le\gamma_c\operatorname{tr}(A)/(1-n\gamma_c)` and :math:`\operatorname{tr}A\le n(\tau+\varepsilon_G)`. So
    :math:`\lambda_{\max}(G)\le\tau+\|\Delta A\|_2+\varepsilon_G\le\tau(1+2n\gamma_c)+2\varepsilon_G=b`.
    Assumes no underflow or overflow (kernel entries with magnitudes in :math:`[10^{-100},10^{100}]`;
    otherwise the SVD route is used).

    References: Sedghi, Gupta, Long (2019), *The Singular Values of Convolutional Layers*, ICLR.
    """
    if method not in ("auto", "svd", "pruned"):
        raise InputError(f"method: expected 'auto', 'svd' or 'pruned', got {method!r}")
    k = _kernel(kernel)
    h, w = _grid(k, input_size)
    if not k.any():
        return 0.0
    absmax = float(np.abs(k).max())
    absmin = float(np.abs(k[k != 0]).min())
    safe = 1e-100 <= absmin and absmax <= 1e100
    if method == "auto":
        method = "pruned" if min(k.shape[:2]) >= 16 else "svd"
    if method == "pruned" and safe:
        with _blas_single_thread():
            return _circular_norm_pruned(k, h, w)[0]
    blocks = circular_frequency_blocks(k, (h, w))
    flat = blocks.reshape(-1, *blocks.shape[-2:])
    return float(np.linalg.svd(flat, compute_uv=False)[:, 0].max())


def _padding(kernel: np.ndarray, padding) -> tuple[int, int]:
    kh, kw = kernel.shape[2:]
    if padding == "same":
        return kh // 2, kw // 2
    ph, pw = pair_of_ints("padding", padding, minimum=0)
    if ph > kh - 1 or pw > kw - 1:
        raise InputError(f"padding: expected 0 <= padding <= kernel size - 1 = {(kh - 1, kw - 1)}, got {(ph, pw)}")
    return ph, pw


@register(
    "conv.zero_padded_upper",
    kind="upper",
    latex=r"\|T^{\mathrm{zero}}_{W,p}\|_2 \le \max_{\omega\in\{0..m-1\}^2}\sigma_{\max}\big(\hat W(\omega)\big),\quad m = n + p",
    assumptions=("zero padding p <= k - 1 on each side", "any stride (sub-sampling has norm 1)"),
    source="derived: zero-padded conv = crop o circular conv on an (n+p)-grid o zero-embedding",
    confidence="derived",
    covers="zero padding (any p <= k-1), any stride",
)
def zero_padded_upper_bound(kernel, input_size, padding="same") -> float:
    r"""Sound upper bound on the spectral norm of a zero-padded convolution.

    .. math:: \|T^{\mathrm{zero}}_{W,p}\|_2 \le \|C_{W}^{(m)}\|_2, \qquad m = n + p,

    where :math:`C_W^{(m)}` is the circular convolution on an :math:`m\times m` grid. Proof: embed the
    :math:`n\times n` input into an :math:`m`-grid of zeros (an isometry E); every window of the padded
    convolution reads original indices in :math:`[-p, n+p-1]`, and modulo :math:`m\ge n+p` those outside
    :math:`[0,n)` land in the zero region, so :math:`T^{\mathrm{zero}} = C\,C_W^{(m)}E` with C a coordinate
    projection (crop, and sub-sampling for a stride). Hence the norm is at most the exact circular value on
    the larger grid, computed by :func:`circular_spectral_norm` and rounded outward.

    ``padding``: ``"same"`` (``(k-1)//2`` rounded up) or an int / pair of ints per side.
    """
    k = _kernel(kernel)
    h, w = pair_of_ints("input_size", input_size)
    ph, pw = _padding(k, padding)
    m = (max(h + ph, k.shape[2]), max(w + pw, k.shape[3]))
    return round_up(circular_spectral_norm(k, m))


@register(
    "conv.kernel_matrix",
    kind="upper",
    latex=r"\|T_W\|_2 \le \sqrt{k_h k_w}\,\|W_{mat}\|_2",
    assumptions=("any padding", "any stride", "any input size"),
    source="standard (each pixel lies in at most k_h k_w patches); e.g. Cisse et al. 2017, Gouk et al. 2021",
    confidence="standard",
    covers="any padding, any stride",
)
def kernel_matrix_bound(kernel) -> float:
    r"""The im2col bound :math:`\|T_W\|_2 \le \sqrt{k_hk_w}\,\|W_{mat}\|_2` (``k * ||W_mat||`` for a square kernel).

    Proof: :math:`\|T_Wx\|^2=\sum_p\|W_{mat}\,\mathrm{patch}_p(x)\|^2 \le \|W_{mat}\|_2^2\sum_p\|\mathrm{patch}_p(x)\|^2
    \le \|W_{mat}\|_2^2\,k_hk_w\|x\|^2`, since each input pixel appears in at most :math:`k_hk_w` patches
    (any padding; a stride only removes patches).
    """
    k = _kernel(kernel)
    kh, kw = k.shape[2:]
    return round_up(math.sqrt(kh * kw) * spectral_norm(kernel_matrix(k)))


def four_reshapes(kernel) -> dict[str, np.ndarray]:
    r"""The four reshapes of Singla & Feizi (2021), indexed by their shapes.

    ``R``: :math:`(c_{out}k_h)\times(c_{in}k_w)`, ``S``: :math:`(c_{out}k_w)\times(c_{in}k_h)`,
    ``T``: :math:`c_{out}\times(c_{in}k_hk_w)` (:math:`=W_{mat}`), ``U``: :math:`(c_{out}k_hk_w)\times c_{in}`.
    """
    k = _kernel(kernel)
    co, ci, kh, kw = k.shape
    return {
        "R": k.transpose(0, 2, 1, 3).reshape(co * kh, ci * kw),  # [(o,a),(i,b)]
        "S": k.transpose(0, 3, 1, 2).reshape(co * kw, ci * kh),  # [(o,b),(i,a)]
        "T": k.reshape(co, ci * kh * kw),  # [o,(i,a,b)]
        "U": k.transpose(0, 2, 3, 1).reshape(co * kh * kw, ci),  # [(o,a,b),i]
    }


@register(
    "conv.singla_four_reshape",
    kind="upper",
    latex=r"\|T_W\|_2 \le \sqrt{k_hk_w}\,\min\big(\|R\|_2,\|S\|_2,\|T\|_2,\|U\|_2\big)",
    assumptions=("any padding", "any stride", "any input size"),
    source="Singla & Feizi, Fantastic Four: Differentiable Bounds on Singular Values of Convolution Layers, ICLR 2021",
    confidence="standard",
    covers="any padding, any stride",
)
def four_reshape_bound(kernel) -> float:
    r"""Singla & Feizi's bound :math:`\sqrt{k_hk_w}\min(\|R\|_2,\|S\|_2,\|T\|_2,\|U\|_2)`, independent of n.

    ``T`` is the im2col bound; ``U`` is the same bound for the adjoint convolution (channels swapped);
    ``R`` and ``S`` apply the 1-D version twice, treating the convolution as a 1-D convolution along one axis
    whose taps are 1-D convolutions along the other axis. See :func:`four_reshapes` for the shapes.
    """
    k = _kernel(kernel)
    kh, kw = k.shape[2:]
    norms = [spectral_norm(m) for m in four_reshapes(k).values()]
    return round_up(math.sqrt(kh * kw) * min(norms))


@register(
    "conv.gram_iteration",
    kind="upper",
    latex=r"\|T_W\|_2 \le \max_\omega \|G_t(\omega)\|_F^{2^{-t}},\quad G_0=\hat W(\omega),\; G_{s+1}=G_s^HG_s",
    assumptions=("circular padding on the grid given (pass grid = n + p for zero padding)", "any stride"),
    source="Delattre, Barthelemy, Araujo, Allauzen, Efficient Bound of Lipschitz Constant for Convolutional "
    "Layers by Gram Iteration, ICML 2023",
    confidence="standard",
    covers="circular padding; zero padding on grid n+p; any stride",
)
def gram_iteration_bound(kernel, input_size, n_iter: int = 6) -> float:
    r"""Gram-iteration upper bound, applied to every frequency block.

    .. math:: \sigma_{\max}(\hat W(\omega))^{2^t} = \sigma_{\max}(G_t(\omega)) \le \|G_t(\omega)\|_F

    Every iterate is an upper bound; the gap closes quadratically (``n_iter`` = 4 to 6 is usually within
    1e-3). Iterates are renormalised (log-scale bookkeeping) so large ``n_iter`` cannot overflow.
    """
    n_iter = positive_int("n_iter", n_iter, minimum=0)
    blocks = circular_frequency_blocks(kernel, input_size)
    flat = blocks.reshape(-1, *blocks.shape[-2:])
    return round_up(float(_gram_frobenius_bound(flat, n_iter).max()))


def conv_matrix(kernel, input_size, padding="circular", stride: int = 1) -> np.ndarray:
    r"""The dense (doubly block Toeplitz / circulant) matrix of a convolution layer, float64.

    Rows and columns follow PyTorch's flattening of ``(C, H, W)`` tensors, so
    ``conv_matrix(W, n, p, s) @ x.ravel() == conv2d(pad(x), W, stride=s).ravel()``. ``padding``: ``"circular"``,
    ``"zeros"`` ('same' size at stride 1: ``(k-1)//2`` before, the rest after) or an int / pair of ints per side
    (zeros). Output size: :math:`\lfloor(h+p_{before}+p_{after}-k_h)/s\rfloor+1` per axis.
    """
    k = _kernel(kernel)
    co, ci, kh, kw = k.shape
    h, w = pair_of_ints("input_size", input_size)
    stride = positive_int("stride", stride)
    if padding in ("circular", "zeros", "same"):
        pads = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)
    else:
        ph, pw = pair_of_ints("padding", padding, minimum=0)
        pads = (ph, ph, pw, pw)
    circular = padding == "circular"
    if circular and (kh > h or kw > w):
        raise InputError(f"input_size: circular padding needs the kernel to fit, got {h}x{w} for {(kh, kw)}")
    ho = (h + pads[0] + pads[1] - kh) // stride + 1
    wo = (w + pads[2] + pads[3] - kw) // stride + 1
    if ho < 1 or wo < 1:
        raise InputError(f"input_size: {h}x{w} is too small for kernel {(kh, kw)} with padding {padding!r}")
    mat = np.zeros((co * ho * wo, ci * h * w))
    oy, ox = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    out_pix = (oy * wo + ox).ravel()
    for a in range(kh):
        for b in range(kw):
            iy = (oy * stride + a - pads[0]).ravel()
            ix = (ox * stride + b - pads[2]).ravel()
            if circular:
                iy, ix, ok = iy % h, ix % w, np.ones_like(iy, dtype=bool)
            else:
                ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
            rows_pix, cols_pix = out_pix[ok], (iy * w + ix)[ok]
            for o in range(co):
                for i in range(ci):
                    np.add.at(mat, (o * ho * wo + rows_pix, i * h * w + cols_pix), k[o, i, a, b])
    return mat
