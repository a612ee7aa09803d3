r"""Lipschitz bounds of self-attention: dot-product on a bounded domain, L2 attention, mean-field W2.

Conventions (row vectors, as in PyTorch): tokens are the rows of :math:`X\in\mathbb R^{n\times d}` and

.. math::
    \mathrm{MHA}(X) = \sum_{h=1}^H \mathrm{softmax}\!\Big(\frac{XQ_hK_h^\top X^\top}{\sqrt{d_k}}\Big)\,X V_h O_h ,

with :math:`Q_h, K_h\in\mathbb R^{d\times d_k}`, :math:`V_h\in\mathbb R^{d\times d_v}`,
:math:`O_h\in\mathbb R^{d_v\times d_{out}}` (the rows of the output projection that act on head h).
Per head we write :math:`A_h = Q_hK_h^\top/\sqrt{d_k}` (so the logits are :math:`x_i^\top A_h x_j`) and
:math:`M_h = V_hO_h`. Lipschitz constants are with respect to the Frobenius (flattened Euclidean) norm on
:math:`\mathbb R^{n\times d}` unless a function says otherwise.

The bounded domain is :math:`B_R^n=\{X : \|x_i\|_2\le R\ \forall i\}` (every token in the ball of radius R).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .validate import InputError, as_real_array, positive_float, positive_int
from .numerics import inf_norm, lambert_w0, round_down, round_up, spectral_norm
from .registry import Mutant, TightFamily, register

__all__ = [
    "AttentionWeights",
    "AttentionLayer",
    "ATTENTION_MAPS",
    "bounded_dot_product_bound",
    "castin_bounded_dot_product_bound",
    "l2_attention_bound",
    "l2_attention_inf_bound",
    "l2_attention_bound_wq2",
    "meanfield_w2_bound",
    "dot_product_blowup_witness",
    "BlowupWitness",
]


@dataclass(frozen=True)
class AttentionWeights:
    """Weights of one multi-head attention layer, per head, in float64.

    ``query``, ``key``: ``(H, d, d_k)``; ``value``: ``(H, d, d_v)``; ``output``: ``(H, d_v, d_out)``.
    Build with :meth:`from_arrays`, which validates shapes and finiteness.
    """

    query: np.ndarray
    key: np.ndarray
    value: np.ndarray
    output: np.ndarray

    @property
    def heads(self) -> int:
        return self.query.shape[0]

    @property
    def dim(self) -> int:
        return self.query.shape[1]

    @property
    def head_dim(self) -> int:
        return self.query.shape[2]

    @property
    def out_dim(self) -> int:
        return self.output.shape[2]

    @classmethod
    def from_arrays(cls, query, key, value, output=None, *, heads: int | None = None) -> "AttentionWeights":
        """Validate and reshape weights.

        ``query``/``key``/``value`` may be ``(H, d, d_k)`` or ``(d, H*d_k)`` (PyTorch's fused layout, split into
        ``heads`` heads, default 1). ``output`` may be ``(H, d_v, d_out)``, ``(H*d_v, d_out)`` or ``None``
        (the identity on the concatenated heads).
        """
        h = 1 if heads is None else positive_int("heads", heads)
        arrays = {}
        for name, arr in (("query", query), ("key", key), ("value", value)):
            a = as_real_array(name, arr, ndim=(2, 3))
            if a.ndim == 2:
                if a.shape[1] % h:
                    raise InputError(f"{name}: width {a.shape[1]} is not divisible by heads={h}")
                a = a.reshape(a.shape[0], h, a.shape[1] // h).transpose(1, 0, 2)
            arrays[name] = np.ascontiguousarray(a)
        q, k, v = arrays["query"], arrays["key"], arrays["value"]
        if q.shape != k.shape:
            raise InputError(f"key: expected the shape of query {q.shape}, got {k.shape}")
        if v.shape[:2] != q.shape[:2]:
            raise InputError(f"value: expected (heads, d, d_v) = ({q.shape[0]}, {q.shape[1]}, *), got {v.shape}")
        H, _, dv = v.shape
        if output is None:
            o = np.zeros((H, dv, H * dv))
            for i in range(H):
                o[i, :, i * dv:(i + 1) * dv] = np.eye(dv)
        else:
            o = as_real_array("output", output, ndim=(2, 3))
            if o.ndim == 2:
                if o.shape[0] != H * dv:
                    raise InputError(f"output: expected {H * dv} rows (heads * d_v), got shape {o.shape}")
                o = o.reshape(H, dv, o.shape[1])
            if o.shape[:2] != (H, dv):
                raise InputError(f"output: expected shape ({H}, {dv}, d_out), got {o.shape}")
        return cls(q, k, v, np.ascontiguousarray(o))

    def logit_matrices(self) -> np.ndarray:
        r""":math:`A_h = Q_hK_h^\top/\sqrt{d_k}`, shape ``(H, d, d)``."""
        return self.query @ np.swapaxes(self.key, 1, 2) / math.sqrt(self.head_dim)

    def value_output_matrices(self) -> np.ndarray:
        r""":math:`M_h = V_hO_h`, shape ``(H, d, d_out)``."""
        return self.value @ self.output

    def tied(self) -> bool:
        return bool(np.array_equal(self.query, self.key))


def _weights(weights) -> AttentionWeights:
    if not isinstance(weights, AttentionWeights):
        raise InputError(f"weights: expected AttentionWeights (use AttentionWeights.from_arrays), got {type(weights).__name__}")
    return weights


def _head_norms(w: AttentionWeights) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([spectral_norm(m) for m in w.logit_matrices()])
    m = np.array([spectral_norm(x) for x in w.value_output_matrices()])
    return a, m


ATTENTION_MAPS = ("dot_product", "l2")


@dataclass(frozen=True, eq=False)
class AttentionLayer:
    """One attention layer as every attention bound sees it, validated once by :meth:`create`.

    ``weights``: the :class:`AttentionWeights`; ``n_tokens``: n; ``radius``: the per-token radius R of the domain
    :math:`B_R^n` (``inf``: the whole space); ``attention``: ``"dot_product"`` (softmax of :math:`XA_hX^\top`) or
    ``"l2"`` (Kim et al.'s L2 attention, tied weights).
    """

    weights: AttentionWeights
    n_tokens: int
    radius: float = math.inf
    attention: str = "dot_product"

    @classmethod
    def create(cls, weights: AttentionWeights, n_tokens: int, radius: float = math.inf,
               attention: str = "dot_product") -> "AttentionLayer":
        w = _weights(weights)
        n = positive_int("n_tokens", n_tokens)
        if isinstance(radius, bool) or not isinstance(radius, (int, float, np.floating)) or not radius > 0 \
                or math.isnan(radius):
            raise InputError(f"radius: expected a number > 0 (or inf for the whole space), got {radius!r}")
        if attention not in ATTENTION_MAPS:
            raise InputError(f"attention: expected one of {ATTENTION_MAPS}, got {attention!r}")
        if attention == "l2" and not w.tied():
            raise InputError("weights: L2 attention needs tied query and key weights (W^Q = W^K)")
        return cls(w, n, float(radius), attention)

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.radius)

    def describe(self) -> str:
        dom = f"B_R^n, R = {self.radius:g}" if self.bounded else "the whole space"
        return (f"{self.attention} attention: {self.weights.heads} head(s), d = {self.weights.dim}, "
                f"d_k = {self.weights.head_dim}, n = {self.n_tokens}, on {dom}")

    def summary(self) -> dict:
        return {"attention": self.attention, "heads": self.weights.heads, "dim": self.weights.dim,
                "head_dim": self.weights.head_dim, "out_dim": self.weights.out_dim, "n_tokens": self.n_tokens,
                "radius": self.radius, "tied": self.weights.tied()}


def _layer(layer) -> AttentionLayer:
    if not isinstance(layer, AttentionLayer):
        raise InputError(f"layer: expected an AttentionLayer (AttentionLayer.create(weights, n_tokens, radius)), "
                         f"got {type(layer).__name__}")
    return layer


def _dot_product_on_ball(layer) -> bool:
    return layer.attention == "dot_product" and layer.bounded


def _l2_tied(layer) -> bool:
    return layer.attention == "l2" and layer.weights.tied()


def _bounded_dp(w: AttentionWeights, n: int, r: float) -> float:
    """The value of ``attention.bounded_dp`` (:func:`bounded_dot_product_bound`) for validated arguments."""
    a, m = _head_norms(w)
    ar2 = a * r * r
    return round_up(float(np.sum(m * (math.sqrt(n) * (1.0 + ar2) + ar2))))


@register(
    "attention.bounded_dp",
    norm="l2",
    kind="upper",
    assumptions=("every token in the ball of radius R", "finite n", "no mask"),
    source="derived here (docstring); same structure as Castin, Ablin, Peyre, How Smooth Is Attention?, ICML 2024, Thm 3.3",
    confidence="derived",
    covers="dot-product multi-head attention on B_R^n, Frobenius norm",
    input_type=AttentionLayer,
    applies=_dot_product_on_ball,
    tight=TightFamily("n = 1 and ||A|| R^2 -> 0: the layer is x -> x M and the bound tends to ||M|| (ratio -> 1); "
                      "the sqrt(n) term is needed by the hard-attention family (n - 1 queries R e1 attending to one "
                      "key R e2 through A = a e1 e2^T, ||A|| R^2 = 4..8, n >= 64: local constant ~ sqrt(n) ||M||, "
                      "ratio ~0.35 there)", "derived here", ratio=1.0),
    mutants=[Mutant("no sqrt(n)", lambda layer: _bounded_dp_no_sqrt_n(layer), "known_false",
                    "the hard-attention family at n = 256, ||A|| R^2 = 6: local constant 40 > 13 = the mutant"),
             Mutant("||A|| R for ||A|| R^2", lambda layer: _bounded_dp_r1(layer), "unknown",
                    "differs only for R != 1; no witness known")],
)
def bounded_dot_product_bound(layer: AttentionLayer) -> float:
    r"""Lipschitz upper bound of dot-product multi-head attention on :math:`B_R^n`.

    .. math:: \mathrm{Lip}_2\big(\mathrm{MHA}|_{B_R^n}\big)\le\sum_h\|M_h\|_2\Big(\sqrt n\,\big(1+\|A_h\|_2R^2\big)+\|A_h\|_2R^2\Big)

    Proof (one head; heads add by the triangle inequality). :math:`B_R^n` is convex, so the constant is
    :math:`\sup\|J\|_2`. For a perturbation H of X, with :math:`p_i` the i-th softmax row and
    :math:`\bar x_i=\sum_jp_{ij}x_j`, the i-th output row moves by :math:`M^\top` times

    * :math:`\sum_j p_{ij}h_j`: squared norms sum to at most :math:`\sum_{ij}p_{ij}\|h_j\|^2\le n\|H\|^2` (Jensen,
      column sums of P are at most n);
    * :math:`\mathrm{Cov}_{p_i}(x)A^\top h_i` with :math:`\|\mathrm{Cov}_{p_i}\|\le R^2`: at most :math:`\|A\|R^2\|H\|`;
    * :math:`\sum_jp_{ij}(x_j-\bar x_i)(A^\top x_i)^\top h_j`: by Cauchy-Schwarz its square is at most
      :math:`\|A\|^2R^2\cdot R^2\sum_jp_{ij}\|h_j\|^2`, summing to :math:`\|A\|^2R^4n\|H\|^2`.

    Castin et al.'s recalled form (:func:`castin_bounded_dot_product_bound`) follows from the same three
    terms with :math:`\|x_j-\bar x_i\|\le 2R` and :math:`(a+b+c)^2\le3(a^2+b^2+c^2)`, so it is never smaller.
    """
    layer = _bounded_layer(layer, "attention.bounded_dp")
    return _bounded_dp(layer.weights, layer.n_tokens, layer.radius)


@register(
    "attention.castin_bounded_dp",
    norm="l2",
    kind="upper",
    assumptions=("every token in the ball of radius R", "finite n", "no mask"),
    source="Castin, Ablin, Peyre, How Smooth Is Attention?, ICML 2024, Thm 3.3 (form recalled, not read)",
    confidence="reconstructed",
    covers="dot-product multi-head attention on B_R^n, Frobenius norm",
    notes="Recalled form; implied by attention.bounded_dp (see that docstring), so it is sound even if the "
    "paper's constant differs. Multi-head by the triangle inequality (our choice).",
    input_type=AttentionLayer,
    applies=_dot_product_on_ball,
    tight=TightFamily("n = 1 and ||A|| R^2 -> 0: the bound tends to sqrt(3) ||M|| while the layer is x -> x M, so "
                      "no witness exceeds 1/sqrt(3) of it", "derived here", ratio=0.577),
)
def castin_bounded_dot_product_bound(layer: AttentionLayer) -> float:
    r"""Castin, Ablin & Peyré's bound on :math:`B_R^n`, in the form recalled in ``docs/research``:

    .. math:: \mathrm{Lip}_2\big(\mathrm{MHA}|_{B_R^n}\big)\le\sum_h\sqrt3\,\|M_h\|_2\big(\|A_h\|_2^2R^4(4n+1)+n\big)^{1/2}

    *Reconstructed*: the paper was not readable here. The form is implied by the derived bound of
    :func:`bounded_dot_product_bound`, which makes it safe to use whatever the paper's exact constant is.
    """
    layer = _bounded_layer(layer, "attention.castin_bounded_dp")
    n, r = layer.n_tokens, layer.radius
    a, m = _head_norms(layer.weights)
    return round_up(float(np.sum(math.sqrt(3.0) * m * np.sqrt(a**2 * r**4 * (4 * n + 1) + n))))


def _bounded_dp_no_sqrt_n(layer: AttentionLayer) -> float:
    a, m = _head_norms(layer.weights)
    ar2 = a * layer.radius ** 2
    return float(np.sum(m * ((1.0 + ar2) + ar2)))


def _bounded_dp_r1(layer: AttentionLayer) -> float:
    a, m = _head_norms(layer.weights)
    ar = a * layer.radius
    return float(np.sum(m * (math.sqrt(layer.n_tokens) * (1.0 + ar) + ar)))


def _meanfield(layer: AttentionLayer, combine, exp_factor: float = 2.0) -> float:
    a, m = _head_norms(layer.weights)
    r2 = layer.radius ** 2
    with np.errstate(over="ignore"):
        terms = m * (1.0 + 3.0 * a * r2) * np.exp(exp_factor * a * r2)
    return float(combine(terms))


def _kim_inf_no_dk(layer: AttentionLayer) -> float:
    w = layer.weights
    wo = np.concatenate(list(w.output), axis=0)
    qq = max(inf_norm(q) * inf_norm(q.T) for q in w.query)
    vv = max(inf_norm(v.T) for v in w.value)
    return 4 * _kim_phi_inverse(layer.n_tokens) * inf_norm(wo.T) * qq * vv


def _bounded_layer(layer, name: str) -> AttentionLayer:
    layer = _layer(layer)
    if not _dot_product_on_ball(layer):
        raise InputError(f"layer: {name} needs dot-product attention on a bounded domain B_R^n, got {layer.describe()}")
    return layer


def _l2_layer(layer, name: str) -> AttentionLayer:
    layer = _layer(layer)
    if not _l2_tied(layer):
        raise InputError(f"layer: {name} needs L2 attention with tied weights (W^Q = W^K), got {layer.describe()}")
    return layer


def _kim_phi_inverse(n_tokens: int) -> float:
    r""":math:`\phi^{-1}(N-1)` for :math:`\phi(x)=xe^{x+1}`, i.e. :math:`W_0\big((N-1)/e\big)`."""
    return lambert_w0((n_tokens - 1) / math.e)


@register(
    "attention.kim_l2_2norm",
    norm="l2",
    kind="upper",
    assumptions=("L2 self-attention", "tied query/key weights W^Q = W^K", "value X A_h W^{V,h}, A_h = W^Q W^{Q,T}/sqrt(D/H)"),
    source="Kim, Papamakarios, Mnih, The Lipschitz Constant of Self-Attention, ICML 2021, Thm 3.2 (recalled)",
    confidence="reconstructed",
    covers="L2 multi-head self-attention, any input (global), Frobenius norm",
    notes="phi(x) = x e^{x+1}, phi^{-1}(N-1) = W_0((N-1)/e); D/H is the head dimension d_k. See "
    "attention.kim_l2_2norm_wq2 for the dimensionally consistent variant.",
    expect="falsified",
    refutation="N = 1 token, D = d_k = H = 1: the layer is the linear map x -> x A W^V W^O with A = (W^Q)^2, "
    "so its constant |W^Q|^2 |W^V| |W^O| exceeds the recalled |W^Q| |W^V| |W^O| whenever |W^Q| > 1 (shrunk "
    "counterexample W^Q = 2.04, W^V = -2.56, W^O = 0.42: exact 4.45 > 2.18; corpus attention.kim_l2_2norm)",
    input_type=AttentionLayer,
    applies=_l2_tied,
)
def l2_attention_bound(layer: AttentionLayer) -> float:
    r"""Kim et al.'s global Lipschitz bound of L2 multi-head self-attention (tied :math:`W^Q=W^K`).

    L2 attention: :math:`P^h_{ij}\propto\exp\big(-\|x_i^\top W^{Q,h}-x_j^\top W^{Q,h}\|_2^2/\sqrt{D/H}\big)` and
    :math:`F(X)=\big[P^1XA_1W^{V,1},\dots,P^HXA_HW^{V,H}\big]W^O` with :math:`A_h=W^{Q,h}W^{Q,h\top}/\sqrt{D/H}`.

    ``norm="2"``:

    .. math:: \mathrm{Lip}_2(F)\le\frac{\sqrt N}{\sqrt{D/H}}\big(4\phi^{-1}(N-1)+1\big)\Big(\sum_h\|W^{Q,h}\|_2^2\|W^{V,h}\|_2^2\Big)^{1/2}\|W^O\|_2

    ``norm="inf"`` (:math:`\ell_\infty` on the flattened input, induced matrix :math:`\infty`-norms):

    .. math:: \mathrm{Lip}_\infty(F)\le\Big(4\phi^{-1}(N-1)+\frac1{\sqrt{D/H}}\Big)\|W^{O\top}\|_\infty
              \max_h\|W^{Q,h}\|_\infty\|W^{Q,h\top}\|_\infty\max_h\|W^{V,h\top}\|_\infty

    with :math:`\phi(x)=xe^{x+1}`, so :math:`\phi^{-1}(N-1)=W_0((N-1)/e)=O(\log N)`.

    *Reconstructed* (the paper was not readable): the theorem's form and the L2-attention value convention
    were recalled from secondary sources; the verification suite tests them against exact local Jacobians.

    **Finding (the recalled 2-norm form is false for this value convention).** With one token
    (:math:`N=1`, :math:`\phi^{-1}(0)=0`) the softmax is 1 and :math:`F(x)=x\,[A_1W^{V,1},\dots,A_HW^{V,H}]W^O`
    is linear, so :math:`\mathrm{Lip}_2(F)=\|[A_hW^{V,h}]_hW^O\|_2`, which for :math:`D=d_k=H=1` equals
    :math:`|W^Q|^2|W^V||W^O|` while the recalled bound is :math:`|W^Q||W^V||W^O|`: false whenever
    :math:`|W^Q|>1` (the shrunk counterexample in ``verification/corpus/attention.kim_l2_2norm/``:
    :math:`W^Q=2.04`, :math:`W^V=-2.56`, :math:`W^O=0.42` gives 4.45 > 2.18). Either the recalled form or the
    recalled value convention (:math:`XA_hW^{V,h}` rather than :math:`XW^{Q,h}W^{V,h}`) is wrong; we cannot tell
    which without the paper, so the recalled form stays registered (``attention.kim_l2_2norm``, expected
    falsification) and ``query_power`` selects the alternative:

    ``query_power=2`` (registered as ``attention.kim_l2_2norm_wq2``, see :func:`l2_attention_bound_wq2`)
    replaces :math:`\|W^{Q,h}\|_2^2` by :math:`\|W^{Q,h}\|_2^4` inside the sum, the power the value path
    :math:`XA_hW^{V,h}` carries (:math:`\|A_h\|_2=\|W^{Q,h}\|_2^2/\sqrt{D/H}`); at :math:`N=1`, one head,
    it is :math:`\|W^Q\|_2^2\|W^V\|_2\|W^O\|_2/\sqrt{d_k}\ge\|A W^VW^O\|_2`, tight for :math:`D=d_k=1`.
    ``query_power`` applies to ``norm="2"`` only (the :math:`\infty` form already has two query factors).
    """
    layer = _l2_layer(layer, "attention.kim_l2_2norm")
    return _kim_l2(layer.weights, layer.n_tokens, "2", 1)


def _kim_l2(w: AttentionWeights, n: int, norm: str = "2", query_power: int = 1) -> float:
    """The recalled Kim et al. forms for validated arguments (see :func:`l2_attention_bound`)."""
    if norm not in ("2", "inf"):
        raise InputError(f"norm: expected '2' or 'inf', got {norm!r}")
    if query_power not in (1, 2) or isinstance(query_power, bool):
        raise InputError(f"query_power: expected 1 (recalled form) or 2 (||W^Q||^4 variant), got {query_power!r}")
    if norm == "inf" and query_power != 1:
        raise InputError("query_power: only the 2-norm form has a query_power variant (norm='inf' needs 1)")
    if not w.tied():
        raise InputError("weights: L2 attention bound needs tied query and key weights (W^Q = W^K, Kim Thm 3.2)")
    dk = w.head_dim
    phi_inv = _kim_phi_inverse(n)
    wo = np.concatenate(list(w.output), axis=0)  # (H*dv, d_out)
    if norm == "2":
        s = math.sqrt(sum(spectral_norm(q) ** (2 * query_power) * spectral_norm(v) ** 2
                          for q, v in zip(w.query, w.value)))
        val = math.sqrt(n) / math.sqrt(dk) * (4 * phi_inv + 1) * s * spectral_norm(wo)
    else:
        qq = max(inf_norm(q) * inf_norm(q.T) for q in w.query)
        vv = max(inf_norm(v.T) for v in w.value)
        val = (4 * phi_inv + 1 / math.sqrt(dk)) * inf_norm(wo.T) * qq * vv
    return round_up(val)


@register(
    "attention.kim_l2_2norm_wq2",
    norm="l2",
    kind="upper",
    assumptions=("L2 self-attention", "tied query/key weights W^Q = W^K", "value X A_h W^{V,h}, A_h = W^Q W^{Q,T}/sqrt(D/H)"),
    source="variant of Kim, Papamakarios, Mnih, The Lipschitz Constant of Self-Attention, ICML 2021, Thm 3.2 "
    "(recalled form falsified here; ||W^{Q,h}||^4 restores the power the value path carries)",
    confidence="reconstructed",
    covers="L2 multi-head self-attention, any input (global), Frobenius norm",
    notes="Not a statement read in the paper: the recalled attention.kim_l2_2norm with ||W^{Q,h}||_2^2 replaced by "
    "||W^{Q,h}||_2^4 (query_power=2 in l2_attention_bound's docstring); tested, not trusted.",
    input_type=AttentionLayer,
    applies=_l2_tied,
    tight=TightFamily("one token, D = d_k = H = 1 (the layer is linear: |W^Q|^2 |W^V| |W^O|)",
                      "derived here (the refutation of attention.kim_l2_2norm)", ratio=1.0),
    mutants=[Mutant("||W^Q||^2 (the recalled form)", lambda layer: _kim_l2(layer.weights, layer.n_tokens, "2", 1),
                    "known_false", "one token, D = d_k = H = 1, |W^Q| > 1 (the refutation of attention.kim_l2_2norm)")],
)
def l2_attention_bound_wq2(layer: AttentionLayer) -> float:
    r"""The dimensionally consistent variant of Kim et al.'s 2-norm bound (``query_power=2``):

    .. math:: \mathrm{Lip}_2(F)\le\frac{\sqrt N}{\sqrt{D/H}}\big(4\phi^{-1}(N-1)+1\big)\Big(\sum_h\|W^{Q,h}\|_2^4\|W^{V,h}\|_2^2\Big)^{1/2}\|W^O\|_2

    *Reconstructed, and not read in any source.* Reasoning: the value path of L2 attention is
    :math:`P^hXA_hW^{V,h}` with :math:`A_h=W^{Q,h}W^{Q,h\top}/\sqrt{D/H}`, so every Jacobian term carries
    :math:`\|A_h\|_2\le\|W^{Q,h}\|_2^2/\sqrt{D/H}`, i.e. the query weights twice; per head
    :math:`\mathrm{Lip}_2(f^h)\le\frac{\sqrt N}{\sqrt{D/H}}(4\phi^{-1}(N-1)+1)\|W^{Q,h}\|_2^2` (Kim et al.'s
    per-head structure as recalled), and stacking heads, :math:`\|[f^hW^{V,h}]_h\|\le
    (\sum_h\mathrm{Lip}(f^h)^2\|W^{V,h}\|^2)^{1/2}`, gives :math:`\|W^{Q,h}\|_2^4` inside the sum. The recalled
    form (:func:`l2_attention_bound`, ``attention.kim_l2_2norm``) has :math:`\|W^{Q,h}\|_2^2` and is falsified at
    :math:`N=1`. At :math:`N=1` this variant is tight for :math:`D=d_k=1`. Whether it holds for :math:`N\ge2` is
    what the verification property tests (it is not proved here).
    """
    layer = _l2_layer(layer, "attention.kim_l2_2norm_wq2")
    return _kim_l2(layer.weights, layer.n_tokens, "2", 2)


# the inf-norm form is the same function with norm="inf"; registered under its own name
@register(
    "attention.kim_l2_infnorm",
    norm="linf",
    kind="upper",
    assumptions=("L2 self-attention", "tied query/key weights W^Q = W^K", "l_inf norm on the flattened input"),
    source="Kim, Papamakarios, Mnih, The Lipschitz Constant of Self-Attention, ICML 2021, Thm 3.2 (recalled)",
    confidence="reconstructed",
    covers="L2 multi-head self-attention, any input (global), l_inf norm",
    input_type=AttentionLayer,
    applies=_l2_tied,
    tight=TightFamily("one token, D = d_k = H = 1: the layer is x -> q^2 v o x, equal to the bound", "derived here",
                      ratio=1.0),
    mutants=[Mutant("no 1/sqrt(D/H) term", lambda layer: _kim_inf_no_dk(layer), "known_false",
                    "one token: phi^{-1}(0) = 0, so the mutant is 0 while the layer is a non-zero linear map")],
)
def l2_attention_inf_bound(layer: AttentionLayer) -> float:
    """:func:`l2_attention_bound` with ``norm="inf"`` (registered separately as ``attention.kim_l2_infnorm``).

    .. math:: \\mathrm{Lip}_\\infty(F)\\le\\Big(4\\phi^{-1}(N-1)+\\tfrac1{\\sqrt{D/H}}\\Big)\\|W^{O\\top}\\|_\\infty\\max_h\\|W^{Q,h}\\|_\\infty\\|W^{Q,h\\top}\\|_\\infty\\max_h\\|W^{V,h\\top}\\|_\\infty
    """
    layer = _l2_layer(layer, "attention.kim_l2_infnorm")
    return _kim_l2(layer.weights, layer.n_tokens, "inf", 1)


@register(
    "attention.meanfield_w2",
    norm="W2",
    kind="upper",
    assumptions=("mu, nu probability measures supported in the ball B_R", "no residual, no normalisation"),
    source="TopoLip (Chen, arXiv 2410.17628) Thm 3 as reconstructed in docs/research/topolip.md; "
    "cf. Castin, Ablin, Peyre 2024, Thm 3.5",
    confidence="reconstructed",
    covers="mean-field (measure) attention; finite token sets as uniform empirical measures",
    input_type=AttentionLayer,
    applies=_dot_product_on_ball,
    tight=TightFamily("A = 0 and a translated pair of measures: W2(F mu, F nu) = ||sum_h M_h^T t|| = the bound for "
                      "one head", "derived here", ratio=1.0),
    mutants=[Mutant("max over heads for the sum", lambda layer: _meanfield(layer, np.max), "known_false",
                    "two identical heads with A = 0 and a translated pair of measures: ratio 2 ||M|| > ||M||"),
             Mutant("exp(||A|| R^2) for exp(2 ||A|| R^2)", lambda layer: _meanfield(layer, np.sum, 1.0), "unknown",
                    "no witness of exponential growth is known; catching it would show the exponent is needed")],
)
def meanfield_w2_bound(layer: AttentionLayer) -> float:
    r"""Mean-field :math:`W_2` Lipschitz bound of attention on measures supported in :math:`B_R`.

    .. math:: W_2\big(F(\mu),F(\nu)\big)\le\sum_h\|M_h\|_2\big(1+3\|A_h\|_2R^2\big)e^{2\|A_h\|_2R^2}\,W_2(\mu,\nu)

    with :math:`F(\mu)=(\Gamma_\mu)_\#\mu`, :math:`\Gamma_\mu(x)=\int e^{x^\top Ay}M^\top y\,d\mu(y)/\int e^{x^\top Ay}d\mu(y)`.
    For a token matrix X, :math:`F(\mu_X)` is the uniform measure on the rows of :math:`\mathrm{SA}(X)`, so the
    bound applies to finite sets of any sizes. *Reconstructed*: the proof sketch is in docs/research
    (docs/research/topolip.md, Thm 3); the multi-head sum is the triangle inequality. Returns ``inf`` on overflow.
    """
    layer = _bounded_layer(layer, "attention.meanfield_w2")
    r = layer.radius
    a, m = _head_norms(layer.weights)
    total = 0.0
    for ah, mh in zip(a, m):
        expo = 2.0 * ah * r * r
        if expo > 700:
            return math.inf
        total += mh * (1.0 + 3.0 * ah * r * r) * math.exp(expo)
    return round_up(total)


@dataclass(frozen=True)
class BlowupWitness:
    """Inputs on which single-head dot-product attention has a certified large local Lipschitz constant."""

    tokens: np.ndarray  # (n, d)
    lower_bound: float  # certified lower bound on ||J_SA(tokens)||_2
    direction: np.ndarray  # unit vector u used for the construction
    scale: float  # t


def _blowup_direction(a: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit u maximising ||A u|| ||M^T u|| over singular vectors of A and M and their pairwise sums."""
    _, _, vt_a = np.linalg.svd(a)
    u_m, _, _ = np.linalg.svd(m)
    cands = [*vt_a, *u_m.T]
    extra = [x + y for x in cands[:4] for y in cands[:4]] + [x - y for x in cands[:4] for y in cands[:4]]
    best, best_val = None, 0.0
    for c in cands + extra:
        nc = np.linalg.norm(c)
        if nc == 0:
            continue
        c = c / nc
        val = np.linalg.norm(a @ c) * np.linalg.norm(m.T @ c)
        if val > best_val:
            best, best_val = c, val
    return best, best_val


@register(
    "attention.kim_dp_not_lipschitz",
    norm="l2",
    kind="claim",
    assumptions=("dot-product attention", "unbounded domain", "n >= 2"),
    source="Kim, Papamakarios, Mnih, The Lipschitz Constant of Self-Attention, ICML 2021, Thm 3.1",
    confidence="standard",
    covers="single-head dot-product attention",
    notes="Encoded as a witness family X_t with a certified lower bound c t^2 ||Au|| ||M^T u|| - ||M||/n on the "
    "local constant; the property checks the exact local constant at X_t against it.",
    value=lambda w: w.lower_bound,
)
def dot_product_blowup_witness(weights: AttentionWeights, n_tokens: int, target: float) -> BlowupWitness:
    r"""Inputs :math:`X_t` on which single-head dot-product attention has local Lipschitz constant :math:`\ge` ``target``.

    Construction (after Kim et al. 2021, Thm 3.1): :math:`x_1=0` (its softmax row is uniform), the other tokens
    :math:`x_j=t\,s_j\,u` with :math:`s_j=\pm1` alternating. The Jacobian block
    :math:`\partial\mathrm{SA}_1/\partial x_1 = M^\top\big(\tfrac1nI+\mathrm{Cov}_{\mathrm{unif}}(X)A^\top\big)`
    with :math:`\mathrm{Cov}=c\,t^2uu^\top`, :math:`c=\tfrac1n\sum_js_j^2-(\tfrac1n\sum_js_j)^2>0`, so

    .. math:: \sup_{X\in\mathbb R^{n\times d}}\|J_{\mathrm{SA}}(X)\|_2=\infty\quad(n\ge2,\ A\ne0,\ \text{some }u: Au\ne0\ne M^\top u)

    witnessed by :math:`\|J_{\mathrm{SA}}(X_t)\|_2\ge c\,t^2\|Au\|\,\|M^\top u\|-\|M\|_2/n\to\infty` as
    :math:`t\to\infty`. ``t`` is chosen so that the right side equals ``target``; the returned ``lower_bound`` is rounded down.
    """
    w = _weights(weights)
    if w.heads != 1:
        raise InputError(f"weights: the witness is for a single head, got {w.heads} heads")
    n = positive_int("n_tokens", n_tokens, minimum=2)
    target = positive_float("target", target)
    a = w.logit_matrices()[0]
    m = w.value_output_matrices()[0]
    u, prod = _blowup_direction(a, m)
    if u is None or prod <= 1e-300:
        raise InputError("weights: no direction u with A u != 0 and M^T u != 0; the witness needs one")
    s = np.array([0.0] + [1.0 if j % 2 == 0 else -1.0 for j in range(n - 1)])
    c = float(np.mean(s**2) - np.mean(s) ** 2)
    m_norm = spectral_norm(m)
    t = math.sqrt((target + m_norm / n) / (c * prod))
    x = np.outer(s * t, u)
    # recompute the certified value from the realised tokens (covariance exactly as constructed)
    lower = c * t * t * prod - m_norm / n
    return BlowupWitness(tokens=x, lower_bound=round_down(lower, rel=1e-9), direction=u, scale=t)
