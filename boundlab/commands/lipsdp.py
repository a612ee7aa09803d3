"""``boundlab lipsdp PATH``: every registered bound of an MLP (LipSDP ``.mat`` weights or a saved torch MLP).

The rows come from the registry (the records whose input type is a feed-forward network: LipSDP-Neuron and -Layer,
ECLipsE and ECLipsE-Fast, certified in float64, and the product of spectral norms), beside an empirical lower
bound. ``--method`` chooses how the LipSDP rows find their multipliers (:data:`boundlab.theory.lipsdp.METHODS`;
``auto``: chordal for 3 or more weight matrices, monolithic otherwise) and ``--solver`` the solver of that method
(default: the method's own, :data:`boundlab.theory.lipsdp.METHOD_SOLVERS`); both are validated before any work,
and the method and solver that actually ran (resolved per piece, a recorded fallback included) are in each row's
``details`` and in the JSON's ``resolved`` block.

``--region KIND:RADIUS --center FILE.npy`` adds the local bounds on the input region (``linf``: the box
:math:`\\|x-c\\|_\\infty\\le r`, ``l2``: the ball): LipSDP-Neuron and ECLipsE-Fast with the slopes restricted by
interval bounds on the region (:mod:`boundlab.theory.lipsdp_local`), beside the largest Jacobian norm found inside
the region. A LipSDP ``.mat`` file has no biases (the network it defines has none); a torch file's biases are read
with its weights (:func:`boundlab.empirical.mlp.load_torch_mlp`), a BatchNorm's shift folded into them.

A torch file's eval-mode BatchNorm layers are folded exactly into the adjacent Linear (``--bn-eps`` is the eps
assumed where a state_dict does not record it); any tensor that is not understood is an error. ``--json OUT``
writes the rows with the metadata block, the input file's path and SHA-256, and what was folded.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..io.results import file_digest, metadata_block, write_json
from ._common import CliError, console, err_console, load_npy, positive_float, positive_int
from .lipschitz import print_rows, rows_with_lower_bounds

#: the values ``--solver`` accepts (each method accepts a subset: theory.lipsdp.METHOD_SOLVERS)
SOLVER_CHOICES = ("STRUCTURED", "CVXOPT", "CLARABEL", "SCS", "CLOSED-FORM")
METHOD_CHOICES = ("auto", "monolithic", "chordal", "eclipse", "eclipse-fast")
_SDP_ROWS = ("sdp.lipsdp_neuron", "sdp.lipsdp_layer")


def _load(args):
    from boundlab.theory.lipsdp import load_mat

    p = Path(args.path)
    if not p.is_file():
        raise CliError(f"PATH: file not found: {p}")
    if p.suffix.lower() == ".mat":
        return load_mat(p), args.activation or "relu", args.negative_slope, [], None
    if p.suffix.lower() in (".npy", ".npz"):
        raise CliError(f"PATH: {p} is a numpy file; expected a LipSDP .mat (cell array 'weights') or a torch file "
                       f"(state_dict or nn.Sequential saved with torch.save)")
    from boundlab.empirical.mlp import load_torch_mlp

    loaded = load_torch_mlp(p, allow_pickle=args.allow_pickle, activation=args.activation, bn_eps=args.bn_eps)
    notes = list(loaded.folded)
    if loaded.bn_eps is not None:
        notes.append(f"BatchNorm eps assumed {loaded.bn_eps:g} (a state_dict does not record it; --bn-eps)")
    slope = loaded.negative_slope if args.negative_slope is None else args.negative_slope
    return loaded.weights, loaded.activation, slope, notes, loaded


def _region(text: str):
    """argparse type of ``--region``: ``KIND:RADIUS`` with KIND ``linf`` or ``l2`` and RADIUS > 0."""
    kind, sep, radius = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in ("linf", "l2"):
        raise argparse.ArgumentTypeError(f"expected KIND:RADIUS with KIND linf or l2 (e.g. linf:0.01), got {text!r}")
    try:
        r = positive_float(radius.strip())
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected KIND:RADIUS with RADIUS a finite number > 0, got {text!r}") \
            from None
    return kind, r


def _options(args, net) -> dict:
    """``--method``/``--solver``/``--split-size`` validated for ``net`` before any solve (errors name the flag)."""
    from boundlab.theory.lipsdp import METHOD_SOLVERS, check_options, resolve_method
    from boundlab.theory.validate import InputError

    try:
        resolved = check_options(net, args.method, args.solver, args.split_size)
    except InputError as exc:
        msg = str(exc)
        flag = "--solver" if msg.startswith("solver") else "--split-size" if msg.startswith("split_size") \
            else "--method"
        accepted = "; ".join(f"{m}: {', '.join(s)}" for m, s in METHOD_SOLVERS.items())
        if flag == "--solver":
            msg = f"{args.solver} is not a solver of --method {args.method} (resolved to " \
                  f"{resolve_method(net, args.method)} here)"
        else:
            msg = msg.split(": ", 1)[-1]
        raise CliError(f"{flag}: {msg}; solvers per method: {accepted}") from None
    return resolved


def _local_network(args, net, loaded):
    """The validated :class:`LocalNetwork` of ``--region``/``--center`` (``None`` without ``--region``)."""
    import numpy as np

    from boundlab.theory.lipsdp_local import LocalNetwork, Region
    from boundlab.theory.validate import InputError

    if args.region is None:
        if args.center is not None:
            raise CliError("--center: given without --region KIND:RADIUS")
        return None
    if args.center is None:
        raise CliError("--center: --region needs the region's center, a .npy vector (--center FILE.npy)")
    if net.residual:
        raise CliError("--region: local bounds need a feed-forward chain")
    if net.activation == "custom":
        raise CliError("--region: local bounds need a named activation (--activation)")
    c = load_npy(args.center, "--center")
    n0 = net.weights[0].shape[1]
    if c.size != n0:  # any shape with one entry per input (an image), flattened in C order as the network does
        raise CliError(f"--center: expected {n0} coordinates (the network's input width), got an array of shape "
                       f"{c.shape}")
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(c)):
        raise CliError("--center: expected finite coordinates")
    biases = None if loaded is None else loaded.biases  # BatchNorm shifts folded in (empirical.mlp)
    kind, radius = args.region
    try:
        return LocalNetwork.create(net, Region.create(kind, c, radius, n0), biases)
    except InputError as exc:
        raise CliError(f"--region: {exc}") from None


def _resolved(rows) -> dict:
    """``{row name: {"method", "solver", "pieces": [{"method", "solver", ...}]}}`` for the certified SDP rows."""
    out = {}
    for r in rows:
        d = r.get("details") or {}
        if "method" in d and "solver" in d:
            pieces = [{k: p[k] for k in ("method", "solver", "solver_fallback", "requested_solver") if k in p}
                      for p in d.get("pieces", []) if isinstance(p, dict) and p.get("kind") == "sdp"]
            out[r["name"]] = {"method": d["method"], "solver": d["solver"], "pieces": pieces}
    return out


def _local_doc(local, args) -> dict:
    from boundlab.empirical.compare import compare_layer
    from boundlab.verification.strategies_lipsdp import region_lower_bound

    doc = compare_layer(local, seed=args.seed, include_planted=args.include_planted)
    import time

    t = time.perf_counter()
    lower = region_lower_bound(local, seed=args.seed)
    lb = {"value": lower, "method": "largest Jacobian norm at seeded points of the region, then projected ascent",
          "seconds": time.perf_counter() - t, "kind": "lower"}
    for r in doc["results"]:
        v = r.get("value")
        ok = r["kind"] == "upper" and isinstance(v, float) and math.isfinite(v) and v > 0
        r["tightness"] = lower / v if ok else None
    return {"region": local.region.summary(), "results": doc["results"], "lower_bounds": {"l2": lb},
            "resolved": _resolved(doc["results"])}


def cmd_lipsdp(args) -> int:
    from boundlab.empirical.compare import compare_layer
    from boundlab.theory.lipsdp import FeedForward

    ws, act, slope, notes, loaded = _load(args)
    for line in notes:
        err_console.print(f"[dim]{line}[/]")
    net = FeedForward.from_weights(ws, act, negative_slope=0.01 if slope is None else slope)
    resolved = _options(args, net)  # before any work
    local = _local_network(args, net, loaded)
    options = {"method": args.method, "solver": args.solver, "split_size": args.split_size}
    kwargs = {name: options for name in _SDP_ROWS}
    plan = ", ".join(f"{m} ({s})" for m, s in resolved.items())
    with console.status(f"LipSDP [{plan}] for {net.describe()}"):
        doc = compare_layer(net, seed=args.seed, include_planted=args.include_planted, evaluate_kwargs=kwargs,
                            search={"radius": args.radius})
        local_doc = _local_doc(local, args) if local is not None else None
    rows = rows_with_lower_bounds(doc)
    config = {"command": "lipsdp", "path": {"path": str(Path(args.path).resolve()), "sha256": file_digest(args.path)},
              "method": args.method, "solver": args.solver, "split_size": args.split_size,
              "network": net.summary(), "folded": notes, "search_radius": args.radius,
              "region": None if local is None else {"kind": args.region[0], "radius": args.region[1],
                                                     "center": {"path": str(Path(args.center).resolve()),
                                                                "sha256": file_digest(args.center)}}}
    if args.json:
        out = {**metadata_block(config, args.seed), "title": net.describe(), "results": rows,
               "layer": doc["layer"], "lower_bounds": doc["lower_bounds"], "resolved": _resolved(doc["results"])}
        if local_doc is not None:
            out["local"] = local_doc
        write_json(args.json, out)
    print_rows(rows, f"{args.path}: {net.describe()}")
    if local_doc is not None:
        label = f"{args.region[0]} r={args.region[1]:g}"
        print_rows(rows_with_lower_bounds(local_doc, label), f"local bounds on the {local.describe()}")
    return 0


def _split_size(text: str) -> int:
    v = positive_int(text)
    if v < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {v}")
    return v


def register(subparsers) -> None:
    s = subparsers.add_parser("lipsdp", help="certified LipSDP upper bounds of an MLP (.mat or torch file)")
    s.add_argument("path", metavar="PATH", help="LipSDP .mat (cell array 'weights') or torch.save'd MLP")
    s.add_argument("--method", choices=METHOD_CHOICES, default="auto",
                   help="how the LipSDP rows find their multipliers: auto (chordal for >= 3 weight matrices, else "
                        "monolithic), monolithic (one LMI through cvxpy), chordal (same optimum, structured), "
                        "eclipse / eclipse-fast (ECLipsE's feasible point, certified) (default: %(default)s)")
    s.add_argument("--solver", type=str.upper, choices=SOLVER_CHOICES, default=None,
                   help="solver of the method (default: the method's own: monolithic CVXOPT, chordal STRUCTURED, "
                        "eclipse STRUCTURED, eclipse-fast CLOSED-FORM); monolithic takes CVXOPT|CLARABEL|SCS, "
                        "chordal also STRUCTURED; every answer is certified the same way")
    s.add_argument("--split-size", dest="split_size", type=_split_size, default=None,
                   help="weights per sub-network (>= 2); bound = product of the pieces")
    s.add_argument("--region", type=_region, default=None, metavar="KIND:RADIUS",
                   help="also the local bounds on an input region: linf:R (box) or l2:R (ball) around --center")
    s.add_argument("--center", default=None, metavar="FILE.npy",
                   help="center of --region: a .npy array with one entry per network input")
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
