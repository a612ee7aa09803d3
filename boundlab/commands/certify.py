"""``boundlab certify MODEL_DIR``: certified local Lipschitz brackets of a finished experiment unit.

For the first ``--points`` images of the unit's probe set and every ``--eps`` (pixel scale, fractions such as
``2/255`` accepted), the bracket [empirical lower, certified upper] of the local l2 Lipschitz constant on the
``--norm`` ball of radius eps around the image, intersected with the pixel box, beside the global certified bound
and what makes it vacuous (:func:`boundlab.empirical.certify.bracket_model`; the certified side is the registered
bound ``local.lipschitz_l2``). ``--json OUT`` writes the brackets with the metadata block.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..io.results import file_digest, metadata_block, write_json
from ._common import CliError, console, nonnegative_float, nonnegative_int, positive_float, positive_int
from ._progress import console_reporter


def _print(doc: dict, title: str) -> None:
    from rich.table import Table

    g = doc["global"]
    table = Table(title=title)
    for col in ("eps", "points", "empirical lower (gmean)", "certified upper (gmean)", "ratio median", "ratio max",
                "global upper"):
        table.add_column(col, overflow="fold")
    for lab, row in doc["per_eps"].items():
        def f(x):
            return "-" if x is None else (f"{x:.4g}" if math.isfinite(x) else "inf")

        table.add_row(lab, str(row["n_points"]), f(row["empirical_lower_gmean"]), f(row["certified_upper_gmean"]),
                      f(row["ratio_median"]), f(row["ratio_max"]), f(g["value"]))
    console.print(table)
    console.print(f"global bound {g['value']:.4g}: {g['why_vacuous']}; largest factors "
                  + ", ".join(f"{x['layer']} {x['lipschitz']:.3g}" for x in g["largest_factors"]))


def cmd_certify(args) -> int:
    d = Path(args.model_dir)
    if not d.is_dir():
        raise CliError(f"MODEL_DIR: {d} is not a folder")
    if not (d / "result.json").is_file():
        raise CliError(f"MODEL_DIR: {d} is not an experiment unit (no result.json; give a folder "
                       f"OUT/topolip/<unit>/)")
    if args.json is not None and Path(args.json).is_dir():
        raise CliError(f"--json: {args.json} is a folder; expected a file path")
    from boundlab.empirical.certify import SearchConfig, bracket_model
    from boundlab.empirical.topolip_experiment import load_unit

    doc, model, _, probe = load_unit(d, checkpoint=args.checkpoint, data_dir=args.data_dir)
    if args.points > probe.shape[0]:
        raise CliError(f"--points: {args.points} exceeds the unit's probe set ({probe.shape[0]} images)")
    search = SearchConfig(args.samples, args.restarts, args.steps, args.smooth or None)
    with console_reporter() as progress:
        res = bracket_model(model, probe[:args.points], args.eps, norm=args.norm, seed=args.seed, search=search,
                            progress=progress, label=f"certify {doc.get('unit', d.name)}")
    title = f"local Lipschitz brackets of {doc.get('unit', d.name)} ({args.checkpoint} weights, {args.norm} regions)"
    _print(res, title)
    if args.json:
        wfile = d / ("weights.pt" if args.checkpoint == "final" else "weights_matched.pt")
        config = {"command": "certify", "unit": doc.get("unit"), "model": doc.get("model"),
                  "checkpoint": args.checkpoint, "eps": list(args.eps), "points": args.points, "norm": args.norm,
                  "search": search.as_dict(), "weights": str(wfile), "weights_sha256": file_digest(wfile)}
        out = write_json(args.json, {**metadata_block(config, args.seed), "kind": "certify_brackets",
                                     "model": doc.get("model"), "unit": doc.get("unit"), **res})
        console.print(f"brackets -> {out}")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("certify", help="certified local Lipschitz brackets of a finished experiment unit",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("model_dir", metavar="MODEL_DIR", help="a finished unit folder OUT/topolip/<unit>/")
    s.add_argument("--eps", type=positive_float, nargs="+", default=[2 / 255],
                   help="region radii on the pixel scale, e.g. 2/255 8/255 (default: 2/255)")
    s.add_argument("--points", type=positive_int, default=100,
                   help="the first N images of the unit's probe set (default: %(default)s)")
    s.add_argument("--norm", choices=("linf", "l2"), default="linf", help="region norm (default: %(default)s)")
    s.add_argument("--checkpoint", choices=("final", "matched"), default="final",
                   help="final weights or those of the matched-accuracy checkpoint (default: %(default)s)")
    s.add_argument("--samples", type=positive_int, default=64,
                   help="random points / vertices per region in the empirical search (default: %(default)s)")
    s.add_argument("--restarts", type=nonnegative_int, default=4,
                   help="best points that start projected ascent (default: %(default)s)")
    s.add_argument("--steps", type=nonnegative_int, default=16,
                   help="projected-ascent steps from each of them (default: %(default)s)")
    s.add_argument("--smooth", type=nonnegative_float, default=50.0,
                   help="softplus sharpness beta of the ReLU surrogate that steers the ascent; 0: the model's own "
                        "gradient (zero almost everywhere on ReLU layers) (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seed of the empirical search (default: %(default)s)")
    s.add_argument("--data-dir", default=None, help="cifar10 units: the folder with the CIFAR-10 python batches")
    s.add_argument("--json", default=None, metavar="OUT", help="write the brackets to this JSON file")
    s.set_defaults(func=cmd_certify)
