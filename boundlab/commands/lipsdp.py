"""``boundlab lipsdp PATH``: certified LipSDP bound of an MLP (LipSDP ``.mat`` weights or a saved torch MLP).

Prints the certified bound (the only upper bound), the solver's value, the naive product bound and the solve time;
``--json OUT`` writes them with the metadata block (config, versions, commit).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from ._common import CliError, console, positive_int
from ..io.results import metadata_block, write_json


def _load(args):
    from boundlab.theory.lipsdp import load_mat

    p = Path(args.path)
    if not p.is_file():
        raise CliError(f"PATH: file not found: {p}")
    if p.suffix.lower() == ".mat":
        return load_mat(p), args.activation or "relu", args.negative_slope
    from boundlab.empirical.mlp import load_torch_mlp

    ws, act, slope = load_torch_mlp(p, allow_pickle=args.allow_pickle, activation=args.activation)
    return ws, act, slope if args.negative_slope is None else args.negative_slope


def cmd_lipsdp(args) -> int:
    from boundlab.theory.lipsdp import FeedForward, LipSDPError, lipsdp

    ws, act, slope = _load(args)
    net = FeedForward.from_weights(ws, act, negative_slope=0.01 if slope is None else slope)
    t0 = time.perf_counter()
    with console.status(f"solving LipSDP-{args.form} ({args.solver}) for {[ws[0].shape[1], *net.hidden, ws[-1].shape[0]]}"):
        try:
            res = lipsdp(net, args.form, solver=args.solver, split_size=args.split_size)
        except LipSDPError as exc:
            raise CliError(f"--solver {args.solver}: {exc}") from exc
    wall = time.perf_counter() - t0
    config = {"command": "lipsdp", "path": str(args.path), "form": args.form, "solver": args.solver,
              "split_size": args.split_size, "activation": act, "alpha": net.alpha, "beta": net.beta,
              "widths": [ws[0].shape[1], *net.hidden, ws[-1].shape[0]]}
    if args.json:
        write_json(args.json, {**metadata_block(config, None), **res.as_dict(), "result": res.as_dict(),
                               "wall_seconds": wall, "network": config["widths"],
                               "analytic": {"product of spectral norms (composition.product)": res.naive_bound}})
    table = Table(title=f"LipSDP-{args.form} of {args.path} {config['widths']} ({act}, slopes [{net.alpha}, {net.beta}])")
    for col in ("quantity", "value"):
        table.add_column(col)
    table.add_row("certified upper bound", f"{res.certified:.8g}")
    table.add_row("solver value (not a bound)", f"{res.solver_value:.8g}")
    table.add_row("naive product bound", f"{res.naive_bound:.8g}")
    table.add_row("certified / naive", f"{res.certified / res.naive_bound:.4f}")
    table.add_row("LMI lambda_max (certified)", f"{res.lambda_max:.3e}")
    table.add_row("solve seconds", f"{res.solve_seconds:.2f} (wall {wall:.2f})")
    console.print(table)
    return 0


def _split_size(text: str) -> int:
    import argparse

    v = positive_int(text)
    if v < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {v}")
    return v


def register(subparsers) -> None:
    s = subparsers.add_parser("lipsdp", help="certified LipSDP upper bound of an MLP (.mat or torch file)")
    s.add_argument("path", metavar="PATH", help="LipSDP .mat (cell array 'weights') or torch.save'd MLP")
    s.add_argument("--form", choices=("neuron", "layer"), default="neuron")
    s.add_argument("--solver", type=str.upper, choices=("CVXOPT", "CLARABEL", "SCS"), default="CVXOPT",
                   help="CVXOPT is the measured default; SCS/Clarabel answers are certified the same way")
    s.add_argument("--split-size", dest="split_size", type=_split_size, default=None,
                   help="weights per sub-network (>= 2); bound = product of the pieces")
    s.add_argument("--activation", default=None,
                   help="relu|leaky_relu|tanh|sigmoid|gelu|silu|identity (default: from the model, else relu)")
    s.add_argument("--negative-slope", dest="negative_slope", type=float, default=None)
    s.add_argument("--allow-pickle", dest="allow_pickle", action="store_true",
                   help="load a whole pickled torch module (executes code from the file)")
    s.add_argument("--json", default=None, help="write the result here (JSON)")
    s.set_defaults(func=cmd_lipsdp)
