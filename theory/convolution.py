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

from ._validate import BoundInputError, as_real_array, pair_of_ints, positive_int
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
        raise BoundInputError(
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


@register(
    "conv.circular_exact",
    kind="exact",
    latex=r"\|T_W\|_2 = \max_{\omega\in\{0..n-1\}^2}\sigma_{\max}\big(\hat W(\omega)\big)",
    assumptions=("circular padding", "stride 1", "kernel fits in the grid"),
    source="Sedghi, Gupta, Long, The Singular Values of Convolutional Layers, ICLR 2019",
    confidence="standard",
    covers="circular padding, stride 1",
)
def circular_spectral_norm(kernel, input_size) -> float:
    r"""Exact spectral norm of the circular convolution on an ``input_size`` grid.

    .. math:: \|T_W\|_2 = \max_{\omega}\sigma_{\max}\big(\hat W(\omega)\big)

    Computed as one batched SVD of the half-spectrum blocks (``rfft2``; the other half are complex
    conjugates with the same singular values). Returns the float64 value, not rounded outward: use
    :func:`theory.numerics.round_up` (or :func:`zero_padded_upper_bound`) where a sound upper bound is needed.

    References: Sedghi, Gupta, Long (2019), *The Singular Values of Convolutional Layers*, ICLR.
    """
    blocks = circular_frequency_blocks(kernel, input_size)
    flat = blocks.reshape(-1, *blocks.shape[-2:])
    return float(np.linalg.svd(flat, compute_uv=False)[:, 0].max())


def _padding(kernel: np.ndarray, padding) -> tuple[int, int]:
    kh, kw = kernel.shape[2:]
    if padding == "same":
        return kh // 2, kw // 2
    ph, pw = pair_of_ints("padding", padding, minimum=0)
    if ph > kh - 1 or pw > kw - 1:
        raise BoundInputError(f"padding: expected 0 <= padding <= kernel size - 1 = {(kh - 1, kw - 1)}, got {(ph, pw)}")
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
        raise BoundInputError(f"input_size: circular padding needs the kernel to fit, got {h}x{w} for {(kh, kw)}")
    ho = (h + pads[0] + pads[1] - kh) // stride + 1
    wo = (w + pads[2] + pads[3] - kw) // stride + 1
    if ho < 1 or wo < 1:
        raise BoundInputError(f"input_size: {h}x{w} is too small for kernel {(kh, kw)} with padding {padding!r}")
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
