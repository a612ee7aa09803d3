r"""Lipschitz constants (spectral norms) of 2-D multichannel convolutions.

Conventions
-----------
* A layer is a :class:`ConvLayer`, validated once: ``kernel`` in the PyTorch layout ``(c_out, c_in, k_h, k_w)``,
  the input size ``(h, w)``, the padding (``circular``, or zero padding of given amounts per side, PyTorch's
  ``padding=P``) and the stride. The layer computes the cross-correlation
  :math:`y_{o,p} = \sum_{i,u} W_{o,i,u}\, x_{i, sp+u-\mathrm{pad}}` (flipping a kernel changes no singular value).
* The Lipschitz constant is taken in the Euclidean norm of the flattened tensors, i.e. the spectral norm
  :math:`\|T_W\|_2` of the linear map :math:`T_W`; a bias does not change it.
* Circular padding means the periodic convolution on the :math:`h\times w` grid (output :math:`h\times w` at
  stride 1), the layer of Sedghi et al.; PyTorch's ``padding_mode="circular"`` with total padding
  :math:`k-1` per axis.

What each registered bound covers (``Bound.applies`` tests it on the layer)
---------------------------------------------------------------------------
===============================  =========================  ========  ===========
bound                            padding                    stride    value
===============================  =========================  ========  ===========
``conv.circular_exact``          circular                   1         exact
``conv.circular_singular_values`` circular                  1         exact (all)
``conv.zero_padded_upper``       zeros, any 0 <= p <= k-1   any       upper bound
``conv.gram_iteration``          any                        any       upper bound
``conv.kernel_matrix``           any                        any       upper bound
``conv.singla_four_reshape``     any                        any       upper bound
===============================  =========================  ========  ===========

A strided convolution is a stride-1 convolution followed by sub-sampling, a coordinate projection of norm 1, so
every stride-1 *upper* bound is also an upper bound for any stride (loose by up to the sub-sampling factor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.linalg

from .validate import InputError, as_real_array, pair_of_ints, positive_int
from .numerics import UNIT_ROUNDOFF, round_up, spectral_norm
from .registry import Mutant, TightFamily, register

__all__ = [
    "ConvLayer",
    "conv_output_size",
    "kernel_matrix",
    "circular_frequency_blocks",
    "circular_singular_values",
    "circular_spectral_norm",
    "zero_padded_upper",
    "kernel_matrix_bound",
    "four_reshape_bound",
    "gram_iteration_bound",
    "conv_matrix",
    "conv_chain",
    "circular_exact",
    "circular_spectrum",
    "zero_padded_upper",
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


def conv_output_size(size: int, kernel_size: int, pad_before: int, pad_after: int, stride: int) -> int:
    r"""Output length of a convolution along one axis, :math:`\lfloor(n+p_{before}+p_{after}-k)/s\rfloor+1`
    (PyTorch's formula; the one place boundlab computes it)."""
    return (size + pad_before + pad_after - kernel_size) // stride + 1


@dataclass(frozen=True, eq=False)
class ConvLayer:
    """One convolution layer as every conv bound sees it, validated once by :meth:`create`.

    ``kernel``: ``(c_out, c_in, k_h, k_w)`` float64; ``input_size``: ``(h, w)``; ``padding_mode``: ``"circular"``
    or ``"zeros"``; ``padding``: ``(top, bottom, left, right)`` amounts; ``stride``: one stride for both axes.
    """

    kernel: np.ndarray
    input_size: tuple[int, int]
    padding_mode: str
    padding: tuple[int, int, int, int]
    stride: int = 1

    @classmethod
    def create(cls, kernel, input_size, padding="circular", stride: int = 1) -> "ConvLayer":
        """Validate a layer.

        ``padding``: ``"circular"`` (periodic convolution on the grid); ``"same"`` (zero padding
        :math:`\\lfloor(k-1)/2\\rfloor` before and the rest after, output size n at stride 1); an int P or a pair
        ``(P_h, P_w)`` (zero padding P on both sides of the axis: PyTorch's ``nn.Conv2d(padding=P)``); or four
        amounts ``(top, bottom, left, right)``. Zero-padding amounts must satisfy :math:`0\\le P\\le k-1` (a
        larger amount only adds outputs that see nothing but padding).
        """
        k = as_real_array("kernel", kernel, ndim=4)
        h, w = pair_of_ints("input_size", input_size)
        stride = positive_int("stride", stride)
        kh, kw = k.shape[2:]
        if isinstance(padding, str):
            if padding == "circular":
                if kh > h or kw > w:
                    raise InputError(f"input_size: circular padding needs the kernel ({kh}x{kw}) to fit in the "
                                     f"grid, got {h}x{w}")
                pads = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)
                mode = "circular"
            elif padding == "same":
                pads = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)
                mode = "zeros"
            else:
                raise InputError(f"padding: expected 'circular', 'same', an amount P or (P_h, P_w) or "
                                 f"(top, bottom, left, right), got {padding!r}")
        else:
            try:
                items = tuple(padding) if not isinstance(padding, (int, np.integer)) else (padding,)
            except TypeError:
                raise InputError(f"padding: expected 'circular', 'same' or zero-padding amounts, got {padding!r}") \
                    from None
            if len(items) == 1:
                items = items * 2
            if len(items) == 2:
                items = (items[0], items[0], items[1], items[1])
            if len(items) != 4:
                raise InputError(f"padding: expected 1, 2 or 4 amounts, got {padding!r}")
            pads = tuple(positive_int(f"padding[{i}]", v, minimum=0) for i, v in enumerate(items))
            mode = "zeros"
            if max(pads[:2]) > kh - 1 or max(pads[2:]) > kw - 1:
                raise InputError(f"padding: expected 0 <= P <= k - 1 per axis (kernel {kh}x{kw}), got "
                                 f"(top, bottom, left, right) = {pads}")
        ho = conv_output_size(h, kh, pads[0], pads[1], stride)
        wo = conv_output_size(w, kw, pads[2], pads[3], stride)
        if ho < 1 or wo < 1:
            raise InputError(f"input_size: {h}x{w} is too small for kernel {kh}x{kw} with padding {pads}")
        return cls(np.ascontiguousarray(k), (h, w), mode, pads, stride)

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.kernel.shape[2]), int(self.kernel.shape[3])

    @property
    def channels(self) -> tuple[int, int]:
        """``(c_in, c_out)``."""
        return int(self.kernel.shape[1]), int(self.kernel.shape[0])

    @property
    def output_size(self) -> tuple[int, int]:
        (h, w), (kh, kw), p = self.input_size, self.kernel_size, self.padding
        return (conv_output_size(h, kh, p[0], p[1], self.stride), conv_output_size(w, kw, p[2], p[3], self.stride))

    @property
    def torch_padding(self) -> tuple[int, int, int, int]:
        """The amounts in ``torch.nn.functional.pad`` order ``(left, right, top, bottom)``."""
        t, b, l, r = self.padding
        return (l, r, t, b)

    def zero_grid(self) -> tuple[int, int]:
        r"""The circular grid :math:`m=n+\max(p_{before},p_{after})` per axis (at least the kernel size) on which
        the zero-padded layer is a crop of the circular convolution (:func:`zero_padded_upper`)."""
        (h, w), (kh, kw), p = self.input_size, self.kernel_size, self.padding
        return max(h + max(p[0], p[1]), kh), max(w + max(p[2], p[3]), kw)

    def describe(self) -> str:
        if self.padding_mode == "circular":
            pad = "circular padding"
        else:
            t, b, l, r = self.padding
            pad = f"zero padding {t}" if len({t, b, l, r}) == 1 else f"zero padding (t, b, l, r) = {self.padding}"
        return (f"conv {tuple(self.kernel.shape)} on {self.input_size[0]}x{self.input_size[1]}, {pad}, "
                f"stride {self.stride}")

    def summary(self) -> dict:
        return {"kernel_shape": list(self.kernel.shape), "input_size": list(self.input_size),
                "padding_mode": self.padding_mode, "padding": list(self.padding), "stride": self.stride,
                "output_size": list(self.output_size)}


def _layer(layer) -> ConvLayer:
    if not isinstance(layer, ConvLayer):
        raise InputError(f"layer: expected a ConvLayer (ConvLayer.create(kernel, input_size, padding, stride)), "
                         f"got {type(layer).__name__}")
    return layer


def _circular_stride1(layer: ConvLayer) -> bool:
    return layer.padding_mode == "circular" and layer.stride == 1


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


def circular_singular_values(kernel, input_size) -> np.ndarray:
    r"""All singular values of the circular convolution, sorted in decreasing order.

    .. math:: \sigma(T_W) = \bigcup_{\omega\in\{0..n-1\}^2}\sigma\big(\hat W(\omega)\big)

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
    eps_g = 2.0 * n_delta * ((inner + 2) * UNIT_ROUNDOFF * 1.01 + 64 * UNIT_ROUNDOFF) * fro2
    gamma_c = 8 * (n + 1) * UNIT_ROUNDOFF / (1 - 8 * (n + 1) * UNIT_ROUNDOFF)
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


def circular_spectral_norm(kernel, input_size, method: str = "auto") -> float:
    r"""Exact spectral norm of the circular convolution on an ``input_size`` grid.

    .. math:: \|T_W\|_2 = \max_{\omega\in\{0..n-1\}^2}\sigma_{\max}\big(\hat W(\omega)\big)

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


def _equal_taps(rng: np.random.Generator, max_channels: int = 3, max_k: int = 3, max_n: int = 6) -> ConvLayer:
    """A member of the equal-taps family: one channel pair, all taps equal, circular padding, stride 1."""
    kh, kw = int(rng.integers(1, max_k + 1)), int(rng.integers(1, max_k + 1))
    c = float(rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-1, 1))
    n = int(rng.integers(max(kh, kw), max_n + 1))
    return ConvLayer.create(np.full((1, 1, kh, kw), c), n, "circular")


@register(
    "conv.kernel_matrix",
    kind="upper",
    norm="l2",
    assumptions=("any padding", "any stride", "any input size"),
    source="standard (each pixel lies in at most k_h k_w patches); e.g. Cisse et al. 2017, Gouk et al. 2021",
    confidence="standard",
    covers="any padding, any stride",
    input_type=ConvLayer,
    tight=TightFamily("equal taps: a constant kernel c on every tap, circular padding (all the energy sits in the DC "
                      "frequency, where sigma_max = k_h k_w |c| = sqrt(k_h k_w) ||W_mat||)",
                      "standard (the DC block of a constant kernel)", construct=_equal_taps),
    mutants=[Mutant("no sqrt(k_h k_w)", lambda layer: spectral_norm(kernel_matrix(layer.kernel)), "known_false",
                    "equal taps, k_h k_w > 1: the exact norm is sqrt(k_h k_w) ||W_mat||"),
             Mutant("sqrt(k_h + k_w)", lambda layer: math.sqrt(sum(layer.kernel_size))
                    * spectral_norm(kernel_matrix(layer.kernel)), "known_false",
                    "equal taps 3x3: exact 3 ||W_mat|| > sqrt(6) ||W_mat||")],
)
def kernel_matrix_bound(layer: ConvLayer) -> float:
    r"""The im2col bound (``k * ||W_mat||`` for a square kernel), for any padding and stride.

    .. math:: \|T_W\|_2 \le \sqrt{k_h k_w}\,\|W_{mat}\|_2

    Proof: :math:`\|T_Wx\|^2=\sum_p\|W_{mat}\,\mathrm{patch}_p(x)\|^2 \le \|W_{mat}\|_2^2\sum_p\|\mathrm{patch}_p(x)\|^2
    \le \|W_{mat}\|_2^2\,k_hk_w\|x\|^2`, since each input pixel appears in at most :math:`k_hk_w` patches
    (any padding; a stride only removes patches).

    Parameters
    ----------
    layer : ConvLayer
        The convolution; only its kernel matters.
    """
    k = _layer(layer).kernel
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
    norm="l2",
    assumptions=("any padding", "any stride", "any input size"),
    source="Singla & Feizi, Fantastic Four: Differentiable Bounds on Singular Values of Convolution Layers, ICLR 2021",
    confidence="standard",
    covers="any padding, any stride",
    input_type=ConvLayer,
    tight=TightFamily("equal taps: a constant kernel c on every tap, circular padding (all the energy sits in the DC "
                      "frequency, where sigma_max = k_h k_w |c| = sqrt(k_h k_w) ||W_mat||)",
                      "standard (the DC block of a constant kernel)", construct=_equal_taps),
    mutants=[Mutant("no sqrt(k_h k_w)", lambda layer: min(spectral_norm(m) for m in four_reshapes(layer.kernel).values()),
                    "known_false", "equal taps, k_h k_w > 1: the exact norm is sqrt(k_h k_w) ||W_mat||"),
             Mutant("max over reshapes of R, S only, no sqrt", lambda layer: max(
                 spectral_norm(m) for k, m in four_reshapes(layer.kernel).items() if k in "RS"), "unknown",
                    "not a claimed form; kept to measure how close the witnesses come")],
)
def four_reshape_bound(layer: ConvLayer) -> float:
    r"""Singla & Feizi's bound, independent of n, for any padding and stride.

    .. math:: \|T_W\|_2 \le \sqrt{k_hk_w}\,\min\big(\|R\|_2,\|S\|_2,\|T\|_2,\|U\|_2\big)

    ``T`` is the im2col bound; ``U`` is the same bound for the adjoint convolution (channels swapped);
    ``R`` and ``S`` apply the 1-D version twice, treating the convolution as a 1-D convolution along one axis
    whose taps are 1-D convolutions along the other axis. See :func:`four_reshapes` for the shapes.
    """
    k = _layer(layer).kernel
    kh, kw = k.shape[2:]
    norms = [spectral_norm(m) for m in four_reshapes(k).values()]
    return round_up(math.sqrt(kh * kw) * min(norms))


@register(
    "conv.gram_iteration",
    kind="upper",
    norm="l2",
    assumptions=("circular padding on the layer's grid, or zero padding via the grid n + max(p_before, p_after)",
                 "any stride"),
    source="Delattre, Barthelemy, Araujo, Allauzen, Efficient Bound of Lipschitz Constant for Convolutional "
    "Layers by Gram Iteration, ICML 2023",
    confidence="standard",
    covers="any padding (circular: the layer's grid; zeros: the crop grid of conv.zero_padded_upper), any stride",
    input_type=ConvLayer,
    tight=TightFamily("circular padding, stride 1: the iterates converge quadratically to the exact norm",
                      "Delattre et al. 2023, Thm 1", ratio=1.0),
    mutants=[Mutant("root 2^-(t+1)", lambda layer, n_iter=6: _gram_mutant(layer, n_iter), "known_false",
                    "any layer with sigma_max > 1 (a constant 3x3 kernel of ones: 9 against about 3)")],
)
def gram_iteration_bound(layer: ConvLayer, n_iter: int = 6) -> float:
    r"""Gram-iteration upper bound, applied to every frequency block of the layer's circular grid.

    .. math:: \|T_W\|_2 \le \max_\omega \|G_t(\omega)\|_F^{2^{-t}},\quad G_0=\hat W(\omega),\; G_{s+1}=G_s^HG_s

    :math:`\sigma_{\max}(\hat W(\omega))^{2^t} = \sigma_{\max}(G_t(\omega)) \le \|G_t(\omega)\|_F`: every iterate
    is an upper bound and the gap closes quadratically (``n_iter`` = 4 to 6 is usually within 1e-3). Iterates are
    renormalised (log-scale bookkeeping) so large ``n_iter`` cannot overflow. Zero padding: the grid of
    :meth:`ConvLayer.zero_grid` (see :func:`zero_padded_upper`); circular: the layer's own grid.

    Parameters
    ----------
    layer : ConvLayer
    n_iter : int
        Gram iterations t (0 gives the Frobenius norm of each block).
    """
    layer = _layer(layer)
    n_iter = positive_int("n_iter", n_iter, minimum=0)
    grid = layer.input_size if layer.padding_mode == "circular" else layer.zero_grid()
    blocks = circular_frequency_blocks(layer.kernel, grid)
    flat = blocks.reshape(-1, *blocks.shape[-2:])
    return round_up(float(_gram_frobenius_bound(flat, n_iter).max()))


@register(
    "conv.circular_exact",
    kind="exact",
    norm="l2",
    assumptions=("circular padding", "stride 1", "kernel fits in the grid"),
    source="Sedghi, Gupta, Long, The Singular Values of Convolutional Layers, ICLR 2019",
    confidence="standard",
    covers="circular padding, stride 1",
    input_type=ConvLayer,
    applies=_circular_stride1,
)
def circular_exact(layer: ConvLayer, method: str = "auto") -> float:
    r"""The exact spectral norm of a circular, stride-1 convolution layer (:func:`circular_spectral_norm`).

    .. math:: \|T_W\|_2 = \max_{\omega\in\{0..n-1\}^2}\sigma_{\max}\big(\hat W(\omega)\big)

    The float64 value, not rounded outward (an exact value, compared with a dense ground truth to 1e-7).
    """
    layer = _layer(layer)
    if not _circular_stride1(layer):
        raise InputError(f"layer: conv.circular_exact needs circular padding and stride 1, got {layer.describe()}")
    return circular_spectral_norm(layer.kernel, layer.input_size, method)


@register(
    "conv.circular_singular_values",
    kind="exact",
    norm="l2",
    assumptions=("circular padding", "stride 1", "kernel fits in the grid"),
    source="Sedghi, Gupta, Long, The Singular Values of Convolutional Layers, ICLR 2019, Thm 6",
    confidence="standard",
    covers="circular padding, stride 1 (every singular value; the value reported is the largest)",
    input_type=ConvLayer,
    applies=_circular_stride1,
    value=lambda sv: float(sv[0]),
)
def circular_spectrum(layer: ConvLayer) -> np.ndarray:
    r"""All singular values of a circular, stride-1 layer (:func:`circular_singular_values`), decreasing.

    .. math:: \sigma(T_W) = \bigcup_{\omega\in\{0..n-1\}^2}\sigma\big(\hat W(\omega)\big)
    """
    layer = _layer(layer)
    if not _circular_stride1(layer):
        raise InputError(f"layer: conv.circular_singular_values needs circular padding and stride 1, got "
                         f"{layer.describe()}")
    return circular_singular_values(layer.kernel, layer.input_size)


@register(
    "conv.zero_padded_upper",
    kind="upper",
    norm="l2",
    assumptions=("zero padding 0 <= p <= k - 1 on each side (any amounts, also asymmetric)",
                 "any stride (sub-sampling has norm 1)"),
    source="derived: zero-padded conv = crop o circular conv on an (n + max p)-grid o zero-embedding",
    confidence="derived",
    covers="zero padding (any amounts 0 <= p <= k-1 per side), any stride",
    input_type=ConvLayer,
    applies=lambda layer: layer.padding_mode == "zeros",
    tight=TightFamily("full padding p = k - 1 and large n: the exact norm tends to the supremum of the symbol, "
                      "which the m-grid maximum approaches", "Toeplitz operators (Boettcher & Grudsky)", ratio=0.9),
    mutants=[Mutant("padding assumed k//2", lambda layer: round_up(circular_spectral_norm(
        layer.kernel, (max(layer.input_size[0] + layer.kernel_size[0] // 2, layer.kernel_size[0]),
                       max(layer.input_size[1] + layer.kernel_size[1] // 2, layer.kernel_size[1])))), "known_false",
        "K = [1,-1,1]^T [1,-1,1] on 2x2 with padding 2: exact 5 > 4 (the CLI's slip before issue 12)"),
             Mutant("grid n (no padding margin)", lambda layer: round_up(circular_spectral_norm(
                 layer.kernel, (max(layer.input_size[0], layer.kernel_size[0]),
                                max(layer.input_size[1], layer.kernel_size[1])))), "known_false",
                    "K = [1,-1,1]^T [1,-1,1] on 2x2 with padding 2: exact 5 > the 3-grid value")],
)
def zero_padded_upper(layer: ConvLayer) -> float:
    r"""Sound upper bound on the spectral norm of a zero-padded convolution with any padding amounts and stride.

    .. math:: \|T^{\mathrm{zero}}_{W,p}\|_2 \le \max_{\omega\in\{0..m-1\}^2}\sigma_{\max}\big(\hat W(\omega)\big),\quad m = n + \max(p_{before}, p_{after})

    per axis (at least the kernel size). Proof: embed the :math:`n\times n` input into an :math:`m`-grid of zeros
    (an isometry E). A window of the padded convolution reads input indices in :math:`[-p_b, n+p_a-1]`; modulo
    :math:`m\ge n+\max(p_b,p_a)` the negative ones land in :math:`[m-p_b, m)` and those past n in
    :math:`[n, n+p_a)`, both in the zero region, and the :math:`n+p_b+p_a-k+1\le m` outputs are distinct grid
    positions (as :math:`\min(p_b,p_a)\le k-1`). So :math:`T^{\mathrm{zero}} = P\,C_W^{(m)}E` with P a
    coordinate projection (the crop, and the sub-sampling of a stride), and the norm is at most the exact
    circular value on the larger grid (:func:`circular_spectral_norm`), rounded outward.
    """
    layer = _layer(layer)
    if layer.padding_mode != "zeros":
        raise InputError(f"layer: conv.zero_padded_upper needs zero padding, got {layer.describe()}")
    return round_up(circular_spectral_norm(layer.kernel, layer.zero_grid()))


def conv_chain(kernels, input_size, padding="circular", stride: int = 1) -> list[ConvLayer]:
    """The layers of a conv -> conv -> ... stack: each kernel on the previous layer's output grid, all with the same
    ``padding`` and ``stride`` (:meth:`ConvLayer.create`); channel counts must chain."""
    if isinstance(kernels, np.ndarray) or not hasattr(kernels, "__len__") or len(kernels) < 1:
        raise InputError("kernels: expected a list of conv kernels")
    layers: list[ConvLayer] = []
    size = input_size
    for i, k in enumerate(kernels):
        k = as_real_array(f"kernels[{i}]", k, ndim=4)
        if layers and k.shape[1] != layers[-1].kernel.shape[0]:
            raise InputError(f"kernels[{i}]: expected {layers[-1].kernel.shape[0]} input channels, got kernel "
                             f"shape {k.shape}")
        layers.append(ConvLayer.create(k, size, padding, stride))
        size = layers[-1].output_size
    return layers


def _gram_mutant(layer: ConvLayer, n_iter: int) -> float:
    """The Gram-iteration bound with the root 2^-(t+1) instead of 2^-t (a slip that squares the error)."""
    grid = layer.input_size if layer.padding_mode == "circular" else layer.zero_grid()
    blocks = circular_frequency_blocks(layer.kernel, grid)
    flat = blocks.reshape(-1, *blocks.shape[-2:])
    return math.sqrt(float(_gram_frobenius_bound(flat, n_iter).max()))


def _as_layer(layer_or_kernel, input_size=None, padding="circular", stride: int = 1) -> ConvLayer:
    if isinstance(layer_or_kernel, ConvLayer):
        return layer_or_kernel
    if input_size is None:
        raise InputError("input_size: required when a kernel (not a ConvLayer) is given")
    return ConvLayer.create(layer_or_kernel, input_size, padding, stride)


def conv_matrix(layer, input_size=None, padding="circular", stride: int = 1) -> np.ndarray:
    r"""The dense (doubly block Toeplitz / circulant) matrix of a convolution layer, float64.

    ``layer``: a :class:`ConvLayer`, or a kernel with ``input_size``, ``padding`` and ``stride`` as in
    :meth:`ConvLayer.create`. Rows and columns follow PyTorch's flattening of ``(C, H, W)`` tensors, so
    ``conv_matrix(L) @ x.ravel() == conv2d(pad(x), W, stride=s).ravel()``.
    """
    layer = _as_layer(layer, input_size, padding, stride)
    k = layer.kernel
    co, ci, kh, kw = k.shape
    h, w = layer.input_size
    ho, wo = layer.output_size
    top, left, s = layer.padding[0], layer.padding[2], layer.stride
    circular = layer.padding_mode == "circular"
    mat = np.zeros((co * ho * wo, ci * h * w))
    oy, ox = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    out_pix = (oy * wo + ox).ravel()
    for a in range(kh):
        for b in range(kw):
            iy = (oy * s + a - top).ravel()
            ix = (ox * s + b - left).ravel()
            if circular:
                iy, ix, ok = iy % h, ix % w, np.ones_like(iy, dtype=bool)
            else:
                ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
            rows_pix, cols_pix = out_pix[ok], (iy * w + ix)[ok]
            for o in range(co):
                for i in range(ci):
                    np.add.at(mat, (o * ho * wo + rows_pix, i * h * w + cols_pix), k[o, i, a, b])
    return mat
