"""``boundlab lipsdp PATH``: every registered bound of an MLP (LipSDP ``.mat`` weights or a saved torch MLP).

The rows come from the registry (the records whose input type is a feed-forward network: LipSDP-Neuron and -Layer,
certified in float64, and the product of spectral norms), beside an empirical lower bound. A torch file's eval-mode
BatchNorm layers are folded exactly into the adjacent Linear (``--bn-eps`` is the eps assumed where a state_dict
does not record it); any tensor that is not understood is an error. ``--json OUT`` writes the rows with the
metadata block, the input file's path and SHA-256, and what was folded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io.results import file_digest, metadata_block, write_json
from ._common import CliError, console, err_console, positive_float, positive_int
from .lipschitz import print_rows, rows_with_lower_bounds


def _load(args):
    from boundlab.theory.lipsdp import load_mat

    p = Path(args.path)
    if not p.is_file():
        raise CliError(f"PATH: file not found: {p}")
    if p.suffix.lower() == ".mat":
        return load_mat(p), args.activation or "relu", args.negative_slope, []
    if p.suffix.lower() in (".npy", ".npz"):
        raise CliError(f"PATH: {p} is a numpy file; expected a LipSDP .mat (cell array 'weights') or a torch file "
                       f"(state_dict or nn.Sequential saved with torch.save)")
    from boundlab.empirical.mlp import load_torch_mlp

    loaded = load_torch_mlp(p, allow_pickle=args.allow_pickle, activation=args.activation, bn_eps=args.bn_eps)
    notes = list(loaded.folded)
    if loaded.bn_eps is not None:
        notes.append(f"BatchNorm eps assumed {loaded.bn_eps:g} (a state_dict does not record it; --bn-eps)")
    slope = loaded.negative_slope if args.negative_slope is None else args.negative_slope
    return loaded.weights, loaded.activation, slope, notes


def cmd_lipsdp(args) -> int:
    from boundlab.empirical.compare import compare_layer
    from boundlab.theory.lipsdp import FeedForward

    ws, act, slope, notes = _load(args)
    for line in notes:
        err_console.print(f"[dim]{line}[/]")
    net = FeedForward.from_weights(ws, act, negative_slope=0.01 if slope is None else slope)
    options = {"solver": args.solver, "split_size": args.split_size}
    kwargs = {name: options for name in ("sdp.lipsdp_neuron", "sdp.lipsdp_layer")}
    with console.status(f"LipSDP ({args.solver}) for {net.describe()}"):
        doc = compare_layer(net, seed=args.seed, include_planted=args.include_planted, evaluate_kwargs=kwargs,
                            search={"radius": args.radius})
    rows = rows_with_lower_bounds(doc)
    config = {"command": "lipsdp", "path": {"path": str(Path(args.path).resolve()), "sha256": file_digest(args.path)},
              "solver": args.solver, "split_size": args.split_size, "network": net.summary(), "folded": notes,
              "search_radius": args.radius}
    if args.json:
        write_json(args.json, {**metadata_block(config, args.seed), "title": net.describe(), "results": rows,
                               "layer": doc["layer"], "lower_bounds": doc["lower_bounds"]})
    print_rows(rows, f"{args.path}: {net.describe()}")
    return 0


def _split_size(text: str) -> int:
    v = positive_int(text)
    if v < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {v}")
    return v


def register(subparsers) -> None:
    s = subparsers.add_parser("lipsdp", help="certified LipSDP upper bounds of an MLP (.mat or torch file)")
    s.add_argument("path", metavar="PATH", help="LipSDP .mat (cell array 'weights') or torch.save'd MLP")
    s.add_argument("--solver", type=str.upper, choices=("CVXOPT", "CLARABEL", "SCS"), default="CVXOPT",
                   help="CVXOPT is the measured default; SCS/Clarabel answers are certified the same way")
    s.add_argument("--split-size", dest="split_size", type=_split_size, default=None,
                   help="weights per sub-network (>= 2); bound = product of the pieces")
    s.add_argument("--activation", default=None,
                   help="relu|leaky_relu|tanh|sigmoid|gelu|silu|identity (default: from the model, else relu)")
    s.add_argument("--negative-slope", dest="negative_slope", type=float, default=None,
                   help="leaky_relu's slope for x < 0 (default: from the model, else 0.01)")
    s.add_argument("--bn-eps", dest="bn_eps", type=positive_float, default=1e-5,
                   help="eps of BatchNorm layers in a state_dict, which does not record it (default: %(default)s)")
    s.add_argument("--allow-pickle", dest="allow_pickle", action="store_true",
                   help="load a whole pickled torch module (executes code from the file)")
    s.add_argument("--radius", type=positive_float, default=10.0,
                   help="radius of the ball the empirical lower bound searches (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seed of the lower-bound search (default: %(default)s)")
    s.add_argument("--include-planted", action="store_true", help="also list the planted false bounds")
    s.add_argument("--json", default=None, metavar="OUT", help="write the rows as JSON to OUT")
    s.set_defaults(func=cmd_lipsdp)
