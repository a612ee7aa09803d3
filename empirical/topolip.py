r"""Per-layer TopoLip measurements (all candidate variants of ``docs/research/topolip.md`` §4.7) with the
stability lemmas of §5.2 checked on the data as a pipeline self-test.

The definition of TopoLip in arXiv 2410.17628 could not be read (docs/research/topolip.md §0), so every candidate is computed;
:math:`W=W_p(\mathrm{Dgm}_k(\cdot),\mathrm{Dgm}_k(\cdot))` with k = ``config.topolip_degree``, p = ``config.topolip_order``,
:math:`X^\ell,\tilde X^\ell,X'^\ell` the layer-l clouds of the clean, perturbed and shifted probes (l = 0: the input):

* **A** (layer-local ratio): :math:`W(\tilde X^\ell,X^\ell)/W(\tilde X^{\ell-1},X^{\ell-1})`;
* **B** (cumulative): :math:`W(\tilde X^\ell,X^\ell)/W(\tilde X^0,X^0)`;
* **C** (theoretical): :math:`C_{\rm stab}\cdot\mathrm{Lip}(h_\ell)` with :math:`C_{\rm stab}` from L1 (p = inf: 2) or L3
  (p < inf: :math:`2\binom N2^{1/p}` for k = 0), an upper bound of :math:`W(\tilde X^\ell,X^\ell)/\max_i\|\tilde x^{\ell-1}_i-x^{\ell-1}_i\|`
  when ``lipschitz[l]`` is a certified bound (:func:`theory.persistence.stability_constant`);
* **D** (distribution shift): :math:`W(X'^\ell,X^\ell)/W(X'^0,X^0)`;
* **A_normalised**, **B_normalised**: A and B on clouds divided by the clean cloud's scale s (``"median"`` pairwise
  distance or ``"diameter"``) of their layer; diagrams scale linearly (L5), so A_normalised
  :math:`=A\,s_{\ell-1}/s_\ell` and B_normalised :math:`=B\,s_0/s_\ell` exactly.

A ratio whose denominator is 0 is ``None`` (null): L4, an orthogonal map of the input leaves the input diagrams
unchanged while a non-equivariant layer changes its output's, so A and B are not bounded by any Lipschitz
constant (tests/test_topology.py shows it). Variance and intrinsic dimensions come from
:mod:`empirical.compactness` (``None`` when undefined, e.g. duplicate points).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from boundlab.theory.validate import InputError, positive_int
from boundlab.theory.persistence import (bottleneck_pointwise_bound, cellular_wasserstein_bound, check_order, cloud,
                                distance_matrix, stability_constant)

from . import compactness as TC
from ..io.progress import emit
from .topology import ENGINES, Diagrams, diagram_distance, persistence_diagrams

__all__ = ["TopoConfig", "layer_measurements", "NORMALISATIONS"]

NORMALISATIONS = ("diameter", "median")
RTOL = 1e-9  # lemma checks: both sides are float64 functions of the same distances (see the theory docstrings)


@dataclass(frozen=True)
class TopoConfig:
    degrees: tuple = (0, 1)
    orders: tuple = (1, 2, "inf")
    topolip_degree: int = 0
    topolip_order: object = "inf"
    normalise: str = "median"
    id_k: int = 20
    engine: str = "auto"

    def validated(self) -> "TopoConfig":
        degs = tuple(positive_int("config.degrees", k, minimum=0) for k in self.degrees)
        if not degs or max(degs) > 1:
            raise InputError(f"config.degrees: expected a non-empty subset of (0, 1), got {self.degrees}")
        if not self.orders:
            raise InputError("config.orders: expected at least one order")
        for p in self.orders:
            check_order(p, "config.orders")
        if self.topolip_degree not in degs:
            raise InputError(f"config.topolip_degree: expected one of config.degrees {degs}, "
                                  f"got {self.topolip_degree!r}")
        check_order(self.topolip_order, "config.topolip_order")
        if self.normalise not in NORMALISATIONS:
            raise InputError(f"config.normalise: expected one of {NORMALISATIONS}, got {self.normalise!r}")
        positive_int("config.id_k", self.id_k, minimum=2)
        if self.engine not in ENGINES:
            raise InputError(f"config.engine: expected one of {ENGINES}, got {self.engine!r}")
        return self

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _key(p) -> str:
    v = check_order(p)
    return "inf" if math.isinf(v) else (str(int(v)) if v == int(v) else repr(v))


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _safe(fn, *args):
    try:
        return float(fn(*args))
    except InputError:
        return None


def _scale(points: np.ndarray, how: str) -> float:
    d = distance_matrix(points)
    iu = np.triu_indices(d.shape[0], 1)
    return float(d.max() if how == "diameter" else np.median(d[iu]))


def _clouds(name: str, arrays, n_layers: int | None = None) -> list[np.ndarray]:
    if arrays is None or len(arrays) < 2:
        raise InputError(f"{name}: expected a list of at least 2 clouds (input + one layer)")
    out = [cloud(f"{name}[{i}]", np.asarray(a).reshape(len(a), -1) if np.ndim(a) > 2 else a)
           for i, a in enumerate(arrays)]
    if n_layers is not None and len(out) != n_layers:
        raise InputError(f"{name}: expected {n_layers} clouds like clean, got {len(out)}")
    return out


def layer_measurements(clean, perturbed, *, config: TopoConfig, shifted=None, lipschitz=None, seed: int = 0,
                       progress=None) -> list[dict]:
    """One dict per layer l >= 1 with the keys of docs/results.md's ``layers`` entries (see the module docstring).

    ``clean[l]``, ``perturbed[l]``, ``shifted[l]``: ``(N, D_l)`` clouds on the same N probes (l = 0: input);
    ``lipschitz[l]``: a certified upper bound of layer l's Lipschitz constant (entry 0 unused). ``seed`` is
    recorded for reproducibility (no random draw happens here). ``progress``: a
    :data:`boundlab.io.progress.Reporter` (one step per diagram).
    """
    if not isinstance(config, TopoConfig):
        raise InputError(f"config: expected a TopoConfig, got {type(config).__name__}")
    cfg = config.validated()
    xs = _clouds("clean", clean)
    L = len(xs)
    ps = _clouds("perturbed", perturbed, L)
    ss = _clouds("shifted", shifted, L) if shifted is not None else None
    n = xs[0].shape[0]
    for name, group in (("clean", xs), ("perturbed", ps), ("shifted", ss or [])):
        for i, a in enumerate(group):
            if a.shape[0] != n:
                raise InputError(f"{name}[{i}]: expected {n} points (one per probe), got {a.shape[0]}")
            if name != "clean" and a.shape != xs[i].shape:
                raise InputError(f"{name}[{i}]: expected shape {xs[i].shape} like clean[{i}], got {a.shape}")
    if lipschitz is not None:
        if len(lipschitz) != L:
            raise InputError(f"lipschitz: expected {L} values (one per cloud, entry 0 unused), got {len(lipschitz)}")
    maxdim = max(cfg.degrees)
    k, p = cfg.topolip_degree, cfg.topolip_order

    def dgms(a) -> Diagrams:
        return persistence_diagrams(a, maxdim, engine=cfg.engine)

    todo = [("clean", xs), ("perturbed", ps)] + ([("shifted", ss)] if ss is not None else [])
    total = sum(len(g) for _, g in todo)
    D: dict[str, list[Diagrams]] = {name: [] for name, _ in todo}
    done = 0
    for name, group in todo:
        for a in group:
            D[name].append(dgms(a))
            done += 1
            emit(progress, "persistence diagrams", done, total)

    def w(a: Diagrams, b: Diagrams, deg=k, order=p) -> float:
        return diagram_distance(a.finite[deg], b.finite[deg], order)

    scales = [_scale(a, cfg.normalise) for a in xs]
    pert = [w(D["perturbed"][l], D["clean"][l]) for l in range(L)]
    shift = [w(D["shifted"][l], D["clean"][l]) for l in range(L)] if ss is not None else None
    rows = []
    for l in range(1, L):
        a_val, b_val = _ratio(pert[l], pert[l - 1]), _ratio(pert[l], pert[0])
        c_val = None
        if lipschitz is not None and lipschitz[l] is not None:
            lip = float(lipschitz[l])
            if not math.isfinite(lip) or lip < 0:
                raise InputError(f"lipschitz[{l}]: expected a finite number >= 0, got {lipschitz[l]!r}")
            c_val = stability_constant(p, k, n) * lip
        d_val = _ratio(shift[l], shift[0]) if shift is not None else None
        s_prev, s_l, s_0 = scales[l - 1], scales[l], scales[0]
        topolip = {
            "A": a_val, "B": b_val, "C": c_val, "D": d_val,
            "A_normalised": None if a_val is None or s_l == 0 else a_val * s_prev / s_l,
            "B_normalised": None if b_val is None or s_l == 0 else b_val * s_0 / s_l,
        }
        # L1 on every degree, L3 on H0 for every finite order: must hold exactly (pipeline self-test)
        l1_upper = bottleneck_pointwise_bound(ps[l], xs[l]).value
        l1_lower = max(w(D["perturbed"][l], D["clean"][l], deg, "inf") for deg in cfg.degrees)
        l3 = []
        for order in cfg.orders:
            if math.isinf(check_order(order)):
                continue
            lower = w(D["perturbed"][l], D["clean"][l], 0, order)
            l3.append((lower, cellular_wasserstein_bound(ps[l], xs[l], order, 0).value))
        l3_ratio = max((lo / up if up > 0 else (math.inf if lo > 0 else 0.0)) for lo, up in l3) if l3 else None
        dist_prev = {f"H{deg}": {_key(o): w(D["clean"][l], D["clean"][l - 1], deg, o) for o in cfg.orders}
                     for deg in cfg.degrees}
        rows.append({
            "layer": f"layer{l}",
            "index": l,
            "dim": int(xs[l].shape[1]),
            "variance": _safe(TC.activation_variance, xs[l]),
            "id_twonn": _safe(TC.twonn_dimension, xs[l]),
            "id_mle": _safe(TC.levina_bickel_dimension, xs[l], min(cfg.id_k, n - 1)) if n > 2 else None,
            "diagram_distance_to_previous": dist_prev,
            "topolip": topolip,
            "stability": {
                "L1_holds": bool(l1_lower <= l1_upper * (1 + RTOL)),
                "L1_ratio": (l1_lower / l1_upper) if l1_upper > 0 else (0.0 if l1_lower == 0 else math.inf),
                "L3_holds": None if not l3 else bool(all(lo <= up * (1 + RTOL) for lo, up in l3)),
                "L3_ratio": l3_ratio,
            },
        })
    return rows
