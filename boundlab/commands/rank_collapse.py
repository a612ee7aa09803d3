"""``boundlab rank-collapse``: residual ratio per layer for pure attention, +MLP, +skip and transformer blocks.

The experiment of Dong, Cordonnier, Loukas (ICML 2021), Sec. 5.1 / Fig. 2, at initialisation on small random
networks (:func:`empirical.rank_collapse.collapse_curves`), on real image-patch tokens (scikit-learn's 8x8 digits)
and on Gaussian tokens of the same shape. Writes ``OUT/rank_collapse.json`` (or ``--json``): the metadata block,
then per input kind and variant the mean, std and median of
:math:`\\|\\mathrm{res}(X^l)\\|_{1,\\infty}/\\|X^l\\|_{1,\\infty}` for l = 0..L over (network seed, input) pairs.
Ratios near 1e-16 are float64 rounding noise (the residual has collapsed below the float floor), not a measured
value; ``float_floor`` in the result says so.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from ..io.results import metadata_block, write_json
from ._common import CliError, console, device, output_file, positive_float, positive_int
from ._progress import console_reporter

FLOAT_FLOOR = 1e-13


def cmd_rank_collapse(args) -> int:
    from boundlab.empirical.rank_collapse import (
        INPUTS,
        VARIANTS,
        collapse_curves,
        collapse_inputs,
    )
    from boundlab.theory import InputError

    kinds = INPUTS if args.inputs == "both" else (args.inputs,)
    config = {"command": "rank-collapse", "inputs": list(kinds), "samples": args.samples, "patch": args.patch,
              "depth": args.depth, "heads": args.heads, "networks": args.networks, "qk_scale": args.qk_scale,
              "value_scale": args.value_scale, "mlp_scale": args.mlp_scale, "variants": list(VARIANTS),
              "metric": "||res(X^l)||_{1,inf} / ||X^l||_{1,inf}, token-mean shift, sqrt(||.||_1 ||.||_inf)",
              "init": "fan-in Gaussian (empirical.rank_collapse.random_network), no training", "device": args.device}
    results = {}
    try:
        with console_reporter() as progress:
            for kind in kinds:
                x = collapse_inputs(kind, args.samples, patch=args.patch, seed=args.seed)
                curves = collapse_curves(x, args.depth, heads=args.heads, networks=args.networks, seed=args.seed,
                                         qk_scale=args.qk_scale, value_scale=args.value_scale,
                                         mlp_scale=args.mlp_scale, device=args.device, progress=progress)
                results[kind] = {"tokens": int(x.shape[1]), "width": int(x.shape[2]),
                                 "curves": {v: {"mean": c.mean.tolist(), "std": c.std.tolist(),
                                                "median": c.median.tolist()} for v, c in curves.items()}}
    except InputError as exc:
        raise CliError(str(exc)) from exc
    out = Path(args.json) if args.json else Path(args.out) / "rank_collapse.json"
    write_json(out, {**metadata_block(config, args.seed), "kind": "rank_collapse", "float_floor": FLOAT_FLOOR,
                     "results": results})
    for kind, res in results.items():
        table = Table(title=f"residual ratio per layer, {kind} tokens ({res['tokens']} x {res['width']}), "
                            f"mean +- std over {args.networks} networks x {args.samples} inputs")
        table.add_column("variant")
        for l in range(args.depth + 1):
            table.add_column(f"l={l}", justify="right")
        for v, c in res["curves"].items():
            table.add_row(v, *(f"{m:.2g}+-{s:.1g}" if m > FLOAT_FLOOR else "<floor" for m, s in zip(c["mean"], c["std"])))
        console.print(table)
    console.print(f"results -> {out}")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("rank-collapse", help="residual ratio per layer: pure attention, +MLP, +skip, transformer")
    s.add_argument("--inputs", choices=("gaussian", "digits", "both"), default="both",
                   help="Gaussian tokens, real 8x8 digit patches, or both (default: %(default)s)")
    s.add_argument("--samples", type=positive_int, default=32, help="inputs per kind (default: %(default)s)")
    s.add_argument("--patch", type=positive_int, default=2, help="patch size, 1, 2, 4 or 8 (default: %(default)s)")
    s.add_argument("--depth", type=positive_int, default=6, help="layers (default: %(default)s)")
    s.add_argument("--heads", type=positive_int, default=2, help="heads per layer (default: %(default)s)")
    s.add_argument("--networks", type=positive_int, default=3, help="network seeds (default: %(default)s)")
    s.add_argument("--qk-scale", dest="qk_scale", type=positive_float, default=1.0,
                   help="scale of the query/key weights (sharper attention when larger; default: %(default)s)")
    s.add_argument("--value-scale", dest="value_scale", type=positive_float, default=1.0,
                   help="scale of the value/output weights (default: %(default)s)")
    s.add_argument("--mlp-scale", dest="mlp_scale", type=positive_float, default=1.0,
                   help="scale of the MLP weights (lambda < 1 contracts; default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seed of the inputs and the first network (default: 0)")
    s.add_argument("--device", type=device, default=None, help="torch device, cpu or cuda[:N] (default: cpu)")
    s.add_argument("--out", default="boundlab-results", help="results folder (default: %(default)s)")
    s.add_argument("--json", type=output_file, default=None, help="results path (default: OUT/rank_collapse.json)")
    s.set_defaults(func=cmd_rank_collapse)
