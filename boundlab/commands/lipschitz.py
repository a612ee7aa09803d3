"""``boundlab lipschitz conv|attention``: every registered bound that applies to one saved layer, beside an
empirical lower bound in the same norm.

The rows come from the registry (:func:`boundlab.empirical.compare.compare_layer`): a bound is listed exactly when
its record's ``applies`` accepts the layer built from the options (padding amount, stride, tied weights, domain),
each row says its norm, and a statement known to be false is shown with kind ``falsified`` and its refutation,
never as a bound. ``--json OUT`` writes ``{"results": [{"name", "kind", "norm", "value", ...}], ...}`` with the
metadata block and the input file's path and SHA-256.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.table import Table

from ..io.results import file_digest, metadata_block, write_json
from ._common import (
    CliError,
    device,
    console,
    err_console,
    load_npy,
    load_npz,
    output_file,
    positive_float,
    positive_int,
)

__all__ = ["register", "print_rows", "rows_with_lower_bounds"]


def rows_with_lower_bounds(doc: dict, layer_label: str | None = None) -> list[dict]:
    """The bound rows of a :func:`compare_layer` document followed by one ``lower`` row per norm."""
    rows = [dict(r, layer=layer_label) if layer_label else dict(r) for r in doc["results"]]
    for norm, lb in doc["lower_bounds"].items():
        if lb is not None:
            rows.append({"name": f"empirical lower bound ({lb['method']})", "kind": "lower", "norm": norm,
                         "value": lb["value"], "seconds": lb["seconds"], "covers": "",
                         **({"layer": layer_label} if layer_label else {})})
    return rows


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.8g}" if math.isfinite(v) else str(v)
    return "-" if v is None else str(v)


def print_rows(rows: list[dict], title: str) -> None:
    """The bounds table: one row per record (kind, norm, value, lower/value in the same norm, what it covers)."""
    table = Table(title=title)
    for col in ("bound", "kind", "norm", "value", "lower / value", "covers / refutation"):
        table.add_column(col, overflow="fold")
    colour = {"upper": "green", "exact": "green", "lower": "cyan", "falsified": "red", "claim": "yellow"}
    for r in rows:
        kind = r["kind"]
        note = r.get("refutation") or r.get("error") or r.get("covers", "")
        tight = r.get("tightness")
        ratio = f"{tight:.3g}" if isinstance(tight, float) else ""
        if isinstance(tight, float) and kind == "upper" and tight > 1 + 1e-9:
            ratio, note = f"[red]{ratio} contradicted[/]", f"the empirical lower bound exceeds it: {note}"
        table.add_row(r["name"] + (f" [{r['layer']}]" if r.get("layer") else ""),
                      f"[{colour.get(kind, 'white')}]{kind}[/]", r.get("norm", ""), _fmt(r.get("value")), ratio,
                      note)
    console.print(table)
    norms = sorted({r.get("norm") for r in rows if r["kind"] in ("upper", "exact")})
    missing = [n for n in norms if not any(r["kind"] == "lower" and r.get("norm") == n for r in rows)]
    if missing:
        console.print(f"no empirical lower bound in norm(s) {', '.join(missing)}: those rows are not compared")
    if any(isinstance(r.get("tightness"), float) and r["kind"] == "upper" and r["tightness"] > 1 + 1e-9
           for r in rows):
        console.print("[red]contradicted[/]: an empirical lower bound exceeds a row claimed as an upper bound: that "
                      "bound is false for this layer (run boundlab verify on it).")
    if any(r["kind"] == "falsified" for r in rows):
        console.print("[red]falsified[/]: statements shown false in this project; not bounds (see refutation).")


def _write(args, rows: list[dict], config: dict, extra: dict) -> None:
    if args.json:
        write_json(args.json, {**metadata_block(config, args.seed), "results": rows, **extra})


def _input_file(path: str) -> dict:
    p = Path(path)
    return {"path": str(p.resolve()), "sha256": file_digest(p)}


def cmd_lipschitz_conv(args) -> int:
    from boundlab.empirical.compare import compare_layer
    from boundlab.theory.convolution import ConvLayer

    kernel = load_npy(args.kernel, "KERNEL")
    if kernel.ndim != 4:
        raise CliError(f"KERNEL: expected a (c_out, c_in, k_h, k_w) array, got shape {kernel.shape}")
    if args.padding == "circular":
        if args.pad is not None:
            raise CliError("--pad: only with --padding zeros (circular padding is the periodic convolution)")
        padding = "circular"
    else:
        kh, kw = kernel.shape[2:]
        padding = args.pad if args.pad is not None else (kh // 2, kw // 2)
    layer = ConvLayer.create(kernel, args.input_size, padding, args.stride)
    doc = compare_layer(layer, seed=args.seed, device=args.device, include_planted=args.include_planted)
    rows = rows_with_lower_bounds(doc)
    config = {"command": "lipschitz conv", "kernel": _input_file(args.kernel), "layer": layer.summary()}
    _write(args, rows, config, {"layer": doc["layer"], "lower_bounds": doc["lower_bounds"]})
    print_rows(rows, layer.describe())
    return 0


def _load_attention(args):
    """AttentionWeights and notes from an ``.npz`` (query, key, value[, output]) or an ``nn.MultiheadAttention``
    ``state_dict`` saved with ``torch.save``."""
    import zipfile


    from boundlab.theory.attention import AttentionWeights

    p = Path(args.weights)
    if p.is_file() and zipfile.is_zipfile(p) and (p.suffix.lower() != ".npz" or _is_torch_zip(p)):
        return _load_torch_attention(p, args.heads)
    if p.suffix.lower() in (".pt", ".pth"):
        return _load_torch_attention(p, args.heads)
    arrays = load_npz(str(p), "WEIGHTS", ("query", "key", "value"))
    fused = [k for k in ("query", "key", "value") if arrays[k].ndim == 2]
    if fused and args.heads is None:
        raise CliError(f"--heads: {p} holds 2-D arrays {fused} (the fused (d, H*d_k) layout); say how many heads "
                       f"they hold with --heads H (--heads 1 for a single head)")
    heads = args.heads if fused else None
    w = AttentionWeights.from_arrays(arrays["query"], arrays["key"], arrays["value"], arrays.get("output"),
                                     heads=heads)
    layout = ("fused (d, H*d_k) split into --heads" if fused else "per head (H, d, d_k)")
    notes = [f"layout: {layout}, row convention x @ W (PyTorch's Linear.weight is the transpose); "
             f"{w.heads} head(s), d = {w.dim}, d_k = {w.head_dim}, output "
             f"{'given' if 'output' in arrays else 'identity on the concatenated heads'}"]
    return w, notes


def _is_torch_zip(p: Path) -> bool:
    """torch.save archives hold a ``*/data.pkl`` member; numpy .npz archives hold ``*.npy`` members only."""
    import zipfile

    with zipfile.ZipFile(p) as z:
        return any(n.endswith("data.pkl") for n in z.namelist())


def _load_torch_attention(p: Path, heads):
    import torch

    from boundlab.empirical.attention import attention_weights_from_torch

    if heads is None:
        raise CliError("--heads: an nn.MultiheadAttention state_dict does not record num_heads; pass --heads H")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise CliError(f"WEIGHTS: cannot read {p} as a torch state_dict ({type(exc).__name__})") from exc
    if not isinstance(state, dict):
        raise CliError(f"WEIGHTS: {p} holds a {type(state).__name__}, expected an nn.MultiheadAttention state_dict")
    return attention_weights_from_torch(state, heads, where=f"WEIGHTS: {p}")


def cmd_lipschitz_attention(args) -> int:
    from boundlab.empirical.compare import compare_layer
    from boundlab.theory.attention import AttentionLayer

    w, notes = _load_attention(args)
    for line in notes:
        err_console.print(f"[dim]{line}[/]")
    layers = [("dot_product", AttentionLayer.create(w, args.tokens, args.radius))]
    if w.tied():
        layers.append(("l2", AttentionLayer.create(w, args.tokens, args.radius, attention="l2")))
    search = {"restarts": args.restarts, "steps": args.steps, "radius": args.radius}
    rows, layer_docs = [], {}
    for label, layer in layers:
        doc = compare_layer(layer, seed=args.seed, device=args.device, include_planted=args.include_planted,
                            search=search)
        rows += rows_with_lower_bounds(doc, label)
        layer_docs[label] = {"layer": doc["layer"], "lower_bounds": doc["lower_bounds"]}
    config = {"command": "lipschitz attention", "weights": _input_file(args.weights), "tokens": args.tokens,
              "radius": args.radius, "heads": w.heads, "restarts": args.restarts, "steps": args.steps,
              "layout": notes}
    _write(args, rows, config, {"layers": layer_docs})
    title = (f"attention: {w.heads} head(s), d = {w.dim}, d_k = {w.head_dim}, n = {args.tokens}, R = {args.radius:g}"
             f"{' (tied: L2 attention rows too)' if w.tied() else ''}")
    print_rows(rows, title)
    return 0


def _pad(text: str):
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected P or PH,PW or T,B,L,R (integers), got {text!r}") from None
    if len(parts) not in (1, 2, 4) or min(parts) < 0:
        raise argparse.ArgumentTypeError(f"expected P or PH,PW or T,B,L,R (integers >= 0), got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def register(subparsers) -> None:
    lip = subparsers.add_parser("lipschitz", help="every bound that applies to one saved layer, and an empirical "
                                "lower bound in each norm")
    lsub = lip.add_subparsers(dest="layer", required=True)
    c = lsub.add_parser("conv", help="a conv kernel saved as .npy (c_out, c_in, k_h, k_w)")
    c.add_argument("kernel", metavar="KERNEL.npy",
                   help="convolution kernel (out_channels, in_channels, k_h, k_w) saved with numpy.save")
    c.add_argument("--input-size", type=positive_int, required=True, help="spatial size n of the n x n input")
    c.add_argument("--padding", choices=("circular", "zeros"), default="circular",
                   help="circular (periodic convolution) or zeros (default: %(default)s)")
    c.add_argument("--pad", type=_pad, default=None,
                   help="zero-padding amount: P (PyTorch's padding=P), PH,PW, or T,B,L,R; 0 <= P <= k-1 "
                   "(default: k//2 per axis)")
    c.add_argument("--stride", type=positive_int, default=1, help="stride (default: %(default)s)")
    c.add_argument("--seed", type=int, default=0, help="seed of the lower-bound search (default: %(default)s)")
    c.add_argument("--device", type=device, default=None, help="cpu (default) or cuda for the lower bound")
    c.add_argument("--include-planted", action="store_true", help="also list the planted false bounds")
    c.add_argument("--json", type=output_file, default=None, metavar="OUT", help="write the rows as JSON to OUT")
    c.set_defaults(func=cmd_lipschitz_conv)
    a = lsub.add_parser("attention", help="attention weights: .npz (query, key, value[, output]) or a torch "
                        "nn.MultiheadAttention state_dict (.pt)")
    a.add_argument("weights", metavar="WEIGHTS",
                   help="an .npz with query, key, value[, output] ((H, d, d_k) per head, or fused (d, H*d_k) with "
                   "--heads), or a torch nn.MultiheadAttention state_dict (.pt) with --heads")
    a.add_argument("--tokens", type=positive_int, required=True, help="number of tokens n")
    a.add_argument("--radius", type=positive_float, required=True,
                   help="per-token radius R of the domain B_R^n (also the search domain of the lower bounds)")
    a.add_argument("--heads", type=positive_int, default=None,
                   help="number of heads of fused 2-D (d, H*d_k) weights or a MultiheadAttention state_dict")
    a.add_argument("--restarts", type=positive_int, default=8, help="restarts of the lower-bound search "
                   "(default: %(default)s)")
    a.add_argument("--steps", type=positive_int, default=30, help="ascent steps per restart (default: %(default)s)")
    a.add_argument("--seed", type=int, default=0, help="seed of the lower-bound search (default: %(default)s)")
    a.add_argument("--device", type=device, default=None, help="cpu (default) or cuda for the lower bound")
    a.add_argument("--include-planted", action="store_true", help="also list the planted false bounds")
    a.add_argument("--json", type=output_file, default=None, metavar="OUT", help="write the rows as JSON to OUT")
    a.set_defaults(func=cmd_lipschitz_attention)
