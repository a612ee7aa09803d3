"""``boundlab lipschitz conv|attention``: every registered bound that applies to one saved layer, beside an
empirical lower bound."""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from ..io.results import metadata_block, write_json
from ._common import CliError, console, load_npy, positive_float, positive_int


def _report(rows: list[dict], title: str, json_out: str | None, config: dict, seed: int) -> None:
    if json_out:
        write_json(json_out, {**metadata_block(config, seed), "results": rows})
    table = Table(title=title)
    for col in ("quantity", "kind", "value", "covers"):
        table.add_column(col, overflow="fold")
    for r in rows:
        v = r["value"]
        table.add_row(r["name"], r["kind"], f"{v:.8g}" if isinstance(v, float) else str(v), r.get("covers", ""))
    console.print(table)


def cmd_lipschitz_conv(args) -> int:
    from boundlab.empirical.lipschitz import conv_operator_norm
    from boundlab.theory import convolution as C
    from boundlab.theory.registry import get

    kernel = load_npy(args.kernel, "KERNEL")
    n = args.input_size
    rows = []

    def add(name, value):
        b = get(name)
        rows.append({"name": name, "kind": b.kind, "value": value, "covers": b.covers, "source": b.source})

    if args.padding == "circular" and args.stride == 1:
        add("conv.circular_exact", C.circular_spectral_norm(kernel, n))
    if args.padding == "zeros":
        add("conv.zero_padded_upper", C.zero_padded_upper_bound(kernel, n, "same"))
    grid = n if args.padding == "circular" else (n + kernel.shape[2] // 2, n + kernel.shape[3] // 2)
    add("conv.gram_iteration", C.gram_iteration_bound(kernel, grid))
    add("conv.singla_four_reshape", C.four_reshape_bound(kernel))
    add("conv.kernel_matrix", C.kernel_matrix_bound(kernel))
    t = time.perf_counter()
    lb = conv_operator_norm(kernel, n, args.padding, args.stride, seed=args.seed, device=args.device)
    rows.append({"name": "empirical (Lanczos on T^T T)", "kind": "lower", "value": lb,
                 "covers": f"{args.padding} padding, stride {args.stride}", "seconds": time.perf_counter() - t})
    cfg = {"command": "lipschitz conv", "kernel": str(args.kernel), "kernel_shape": list(kernel.shape),
           "input_size": n, "padding": args.padding, "stride": args.stride}
    _report(rows, f"conv {tuple(kernel.shape)} on {n}x{n}, {args.padding} padding, stride {args.stride}",
            args.json, cfg, args.seed)
    return 0


def cmd_lipschitz_attention(args) -> int:
    import numpy as np

    from boundlab.empirical.attention import dot_product_attention, l2_attention
    from boundlab.empirical.lipschitz import global_lipschitz_lower_bound
    from boundlab.theory import attention as A
    from boundlab.theory.registry import get

    p = Path(args.weights)
    if not p.is_file():
        raise CliError(f"WEIGHTS: file not found: {p}")
    with np.load(p, allow_pickle=False) as data:
        missing = [k for k in ("query", "key", "value") if k not in data.files]
        if missing:
            raise CliError(f"WEIGHTS: {p} lacks arrays {missing} (expected query, key, value[, output])")
        arrays = {k: data[k] for k in data.files}
    w = A.AttentionWeights.from_arrays(arrays["query"], arrays["key"], arrays["value"], arrays.get("output"),
                                       heads=args.heads)
    n, r = args.tokens, args.radius
    rows = []

    def add(name, value):
        b = get(name)
        rows.append({"name": name, "kind": b.kind, "value": value, "covers": b.covers, "source": b.source})

    add("attention.bounded_dp", A.bounded_dot_product_bound(w, n, r))
    add("attention.castin_bounded_dp", A.castin_bounded_dot_product_bound(w, n, r))
    add("attention.meanfield_w2", A.meanfield_w2_bound(w, r))
    res = global_lipschitz_lower_bound(dot_product_attention(w, args.device), (n, w.dim), r, seed=args.seed,
                                       restarts=args.restarts, steps=args.steps, device=args.device)
    rows.append({"name": "empirical dot-product (search on B_R^n)", "kind": "lower", "value": res.lower_bound,
                 "covers": f"n={n}, R={r}"})
    if w.tied():
        add("attention.kim_l2_2norm", A.l2_attention_bound(w, n, "2"))
        add("attention.kim_l2_infnorm", A.l2_attention_bound(w, n, "inf"))
        res2 = global_lipschitz_lower_bound(l2_attention(w, args.device), (n, w.dim), r, seed=args.seed,
                                            restarts=args.restarts, steps=args.steps, device=args.device)
        rows.append({"name": "empirical L2 attention (search on B_R^n)", "kind": "lower", "value": res2.lower_bound,
                     "covers": f"n={n}, R={r}"})
    cfg = {"command": "lipschitz attention", "weights": str(p), "tokens": n, "radius": r, "heads": w.heads,
           "restarts": args.restarts, "steps": args.steps}
    _report(rows, f"attention: {w.heads} heads, d={w.dim}, d_k={w.head_dim}, n={n}, R={r}", args.json, cfg,
            args.seed)
    return 0



def register(subparsers) -> None:
    lip = subparsers.add_parser("lipschitz", help="bounds and empirical lower bound for one saved layer")
    lsub = lip.add_subparsers(dest="layer", required=True)
    c = lsub.add_parser("conv", help="a conv kernel saved as .npy (c_out, c_in, k_h, k_w)")
    c.add_argument("kernel", metavar="KERNEL.npy")
    c.add_argument("--input-size", type=positive_int, required=True)
    c.add_argument("--padding", choices=("circular", "zeros"), default="circular")
    c.add_argument("--stride", type=positive_int, default=1)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default=None)
    c.add_argument("--json", default=None)
    c.set_defaults(func=cmd_lipschitz_conv)
    a = lsub.add_parser("attention", help="attention weights saved as .npz (query, key, value[, output])")
    a.add_argument("weights", metavar="WEIGHTS.npz")
    a.add_argument("--tokens", type=positive_int, required=True)
    a.add_argument("--radius", type=positive_float, required=True)
    a.add_argument("--heads", type=positive_int, default=None, help="split 2-D (d, H*d_k) weights into heads")
    a.add_argument("--restarts", type=positive_int, default=8)
    a.add_argument("--steps", type=positive_int, default=30)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--device", default=None)
    a.add_argument("--json", default=None)
    a.set_defaults(func=cmd_lipschitz_attention)
