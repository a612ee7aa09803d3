"""``boundlab convex-heads``: convex attention heads vs linear and MLP heads on frozen features (accuracy table).

Wraps :func:`empirical.convex_finetune.run_finetune`; writes ``OUT/convex_heads.json`` (or ``--json``) with the
metadata block (config, seed, versions, commit), the data description and one row per head.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from ..io.results import metadata_block, write_json
from ._common import CliError, console, output_file, positive_float, positive_int
from ._progress import console_reporter


def _load_features(path: str) -> tuple:
    """``tokens`` and ``labels`` from an ``.npz`` file; a missing file or array is a :class:`CliError`."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CliError(f"FEATURES: file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as data:
            missing = [k for k in ("tokens", "labels") if k not in data.files]
            if missing:
                raise CliError(f"FEATURES: {p} lacks arrays {missing} (expected tokens (n, s, d) and labels (n,))")
            return data["tokens"], data["labels"]
    except CliError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise CliError(f"FEATURES: cannot read {p}: {exc}") from exc


def cmd_convex_heads(args) -> int:
    from boundlab.empirical.convex_finetune import SCALES, run_finetune

    overrides = {k: getattr(args, k) for k in ("n_train", "n_test", "dim", "lam", "seed", "steps", "polish")
                 if getattr(args, k) is not None}
    tokens = labels = None
    if args.features:
        tokens, labels = _load_features(args.features)
    with console_reporter() as progress:
        result = run_finetune(SCALES[args.scale], tokens=tokens, labels=labels, progress=progress, **overrides)
    out = Path(args.json) if args.json else Path(args.out) / "convex_heads.json"
    config = {"command": "convex-heads", "scale": args.scale, "features": args.features, **result["config"]}
    write_json(out, {**metadata_block(config, result["config"]["seed"]), "data": result["data"],
                     "rows": result["rows"], "seconds": result["seconds"]})
    d = result["data"]
    table = Table(title=f"heads on frozen features: {d['source']}; n_train={d['n_train']}, n_test={d['n_test']}, "
                        f"s={d['tokens']}, d={d['dim']}, beta={d['beta']:.4g}")
    for col in ("head", "solver", "train acc", "test acc", "objective", "certified gap", "heads / m*", "seconds"):
        table.add_column(col, overflow="fold")
    for r in result["rows"]:
        gap = f"{r['gap']:.2e}" if r["gap"] is not None else (
            f"+{100 * r['gap_to_convex']:.2f}% vs convex" if "gap_to_convex" in r else "-")
        heads = f"{r['heads']} / {r['m_star']}" if r["m_star"] is not None else str(r["heads"])
        table.add_row(r["head"], r["solver"], f"{r['train_acc']:.3f}", f"{r['test_acc']:.3f}", f"{r['objective']:.6g}",
                      gap, heads, f"{r['seconds']:.1f}")
    console.print(table)
    console.print(f"results -> {out} ({result['seconds']:.1f} s)")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("convex-heads", help="convex attention heads vs linear and MLP heads on frozen features")
    s.add_argument("--scale", choices=("small", "paper"), default="small",
                   help="small: minutes on 2 cores; paper: all digits, the paper's head sizes (default: %(default)s)")
    s.add_argument("--features", default=None, metavar="F.npz",
                   help="external frozen features: arrays tokens (n, s, d) and labels (n,)")
    s.add_argument("--n-train", dest="n_train", type=positive_int, default=None,
                   help="training samples (default: 500 small, 1400 paper)")
    s.add_argument("--n-test", dest="n_test", type=positive_int, default=None,
                   help="test samples (default: every sample not used for training)")
    s.add_argument("--dim", type=positive_int, default=None, help="token dimension of the frozen embedding (default: 6 small, 8 paper)")
    s.add_argument("--lam", type=positive_float, default=None, help="weight decay per training sample (default: 1e-3)")
    s.add_argument("--steps", type=positive_int, default=None, help="L-BFGS iterations (default: 300 small, 500 paper)")
    s.add_argument("--polish", type=positive_int, default=None,
                   help="most FISTA steps after Burer-Monteiro per convex head (the certified gap is reported)")
    s.add_argument("--seed", type=int, default=None,
                   help="seed of the embedding, the split and the training (default: 0)")
    s.add_argument("--out", default="boundlab-results", help="results folder (default: %(default)s)")
    s.add_argument("--json", type=output_file, default=None, help="results path (default: OUT/convex_heads.json)")
    s.set_defaults(func=cmd_convex_heads)

