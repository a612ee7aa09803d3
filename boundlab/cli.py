"""``boundlab`` command line: thin wrappers that parse, call one library function, print and write JSON.

Commands: ``demo``, ``verify``, ``bounds``, ``lipschitz conv``, ``lipschitz attention``. Bad input exits
with status 2 and a one-line reason naming the argument.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .results import metadata_block, read_json, write_json

console = Console(width=None if sys.stdout.isatty() else 160)


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- bounds
def cmd_bounds(args) -> int:
    from theory.registry import all_bounds

    records = all_bounds()
    if args.json:
        write_json(args.json, {**metadata_block({"command": "bounds"}), "bounds": [b.as_dict() for b in records]})
    table = Table(title=f"boundlab: {len(records)} registered bounds")
    for col in ("name", "kind", "confidence", "covers", "source"):
        table.add_column(col, overflow="fold")
    for b in records:
        table.add_row(b.name, b.kind, b.confidence, b.covers, b.source)
    console.print(table)
    return 0


# --------------------------------------------------------------------------- verify / demo
def run_verification(profile: str, json_path: Path, select: str | None = None, corpus: str | None = None,
                     seed: int | None = None, quiet: bool = False) -> int:
    """Run the verification suite (pytest) in a subprocess; returns pytest's exit status."""
    import verification

    vdir = Path(verification.__file__).resolve().parent
    cmd = [sys.executable, "-m", "pytest", str(vdir), "-q", "-p", "no:cacheprovider",
           f"--hypothesis-profile={profile}", f"--boundlab-json={json_path}", "--rootdir", str(vdir.parent)]
    if select:
        cmd += ["-k", select]
    if seed is not None:
        cmd += [f"--hypothesis-seed={seed}"]
    env = dict(os.environ)
    env["BOUNDLAB_PROFILE"] = profile
    if corpus:
        env["BOUNDLAB_CORPUS"] = str(corpus)
    if quiet:
        return subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    console.print(f"[bold]boundlab verify[/]: profile {profile}, results -> {json_path}")
    return subprocess.call(cmd, env=env)


def print_summary(json_path: Path) -> bool:
    """Print the verification summary table; returns True when every expectation was met."""
    doc = read_json(json_path)
    table = Table(title=f"verification summary ({doc.get('profile')}, commit {doc.get('commit')})")
    for col in ("bound", "confidence", "expect", "examples", "falsified", "worst ratio", "verdict"):
        table.add_column(col, overflow="fold")
    ok = True
    for p in doc["properties"]:
        met = p["falsified"] == (p["expect"] == "falsified")
        ok &= met
        ratio = p["worst_ratio"]
        ratio_s = f"{ratio:.4g}" if isinstance(ratio, (int, float)) else str(ratio)
        verdict = "[green]as expected[/]" if met else "[red]UNEXPECTED[/]"
        table.add_row(p["bound"], p["confidence"], p["expect"], str(p["examples"]), str(p["falsified"]), ratio_s,
                      verdict)
    console.print(table)
    console.print("worst ratio = max over examples of empirical lower bound / claimed upper bound (1 = tight).")
    return ok


def campaign_unit(profile: str, seed: int, out_dir: str, select: str | None, corpus: str | None) -> dict:
    """One unit of a falsification campaign: the suite under one Hypothesis seed (idempotent: a finished unit is
    skipped by the executor). Writes ``OUT_DIR/verify.json`` and commits ``OUT_DIR/unit.json``."""
    from .executor import commit_result

    out = Path(out_dir) / "verify.json"
    status = run_verification(profile, out, select, corpus, seed, quiet=True)
    doc = read_json(out) if out.is_file() else {"properties": []}
    unexpected = [p["bound"] for p in doc["properties"] if p["falsified"] != (p["expect"] == "falsified")]
    summary = {"profile": profile, "seed": seed, "pytest_status": status, "verify": str(out),
               "properties": len(doc["properties"]), "unexpected": unexpected}
    commit_result(Path(out_dir) / "unit.json", {**metadata_block({"profile": profile, "select": select}, seed),
                                                **summary})
    return summary


def cmd_campaign(args) -> int:
    """``verify --campaign``: the suite under many seeds, in process or on Dask; one folder per seed."""
    from .executor import Unit, make_executor, unit_key

    try:
        seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    except ValueError:
        raise CliError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    if not seeds:
        raise CliError("--seeds: expected at least one seed")
    if args.profile == "ci":
        raise CliError("--profile: the ci profile is derandomized (seeds change nothing); use campaign or thorough")
    root = Path(args.out) / "campaign"
    units = []
    for seed in seeds:
        cfg = {"profile": args.profile, "seed": seed, "select": args.select}
        key = unit_key(f"{args.profile}-s{seed}", cfg)
        folder = root / key
        units.append(Unit(key, campaign_unit, {"profile": args.profile, "seed": seed, "out_dir": str(folder.resolve()),
                                                "select": args.select, "corpus": args.corpus},
                          str(folder / "unit.json")))
    try:
        executor = make_executor(args.scheduler, args.workers)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    with executor:
        executor.run(units)
    table = Table(title=f"falsification campaign ({args.profile}, {len(seeds)} seeds) -> {root}")
    for col in ("seed", "properties", "unexpected", "verify.json"):
        table.add_column(col, overflow="fold")
    bad = 0
    for u in units:
        doc = read_json(u.result_path)
        bad += bool(doc["unexpected"])
        table.add_row(str(doc["seed"]), str(doc["properties"]), ", ".join(doc["unexpected"]) or "-", doc["verify"])
    console.print(table)
    return 1 if bad else 0


def cmd_verify(args) -> int:
    if getattr(args, "campaign", False):
        return cmd_campaign(args)
    out = Path(args.json) if args.json else Path(args.out) / "verify.json"
    status = run_verification(args.profile, out, args.select, args.corpus, args.seed)
    if not out.is_file():
        raise CliError(f"verification produced no results file at {out} (pytest exit status {status})")
    ok = print_summary(out)
    return 0 if (status == 0 and ok) else 1


def cmd_demo(args) -> int:
    """The main job on the embedded default data: verification (ci profile) and its summary, a small TopoLip
    experiment on the bundled digits, then the HTML report of both."""
    args.profile, args.select, args.json, args.seed, args.campaign = "ci", None, None, None, False
    status = cmd_verify(args)
    out = Path(args.out)
    if not args.skip_experiment:
        from empirical.topolip_experiment import run_demo

        console.print("[bold]boundlab demo[/]: TopoLip experiment on the embedded digits (small)")
        verdicts = run_demo(out, device=args.device)
        _print_verdicts(verdicts)
    from empirical.sdp_comparison import write_sdp_comparison

    for path in write_sdp_comparison(out, seed=0):
        doc = read_json(path)
        certified = ", ".join(f"{r['form']} {r['certified']:.5g}" for r in doc["results"])
        analytic = ", ".join(f"{k} {v:.5g}" for k, v in doc["analytic"].items())
        console.print(f"[bold]{doc['network']}[/]: SDP {certified}; analytic {analytic}; "
                      f"empirical lower bound {doc['empirical_lower']:.5g}")
    from reports import build_report

    report = build_report(out, out)
    console.print(f"[bold]report[/] -> {report}")
    return status


def _print_verdicts(path: Path) -> None:
    doc = read_json(path)
    table = Table(title=f"TopoLip claims ({path})")
    for col in ("claim", "verdict", "detail"):
        table.add_column(col, overflow="fold")
    colour = {"supported": "green", "contradicted": "red", "inconclusive": "yellow"}
    for c in doc.get("claims", []):
        v = c.get("verdict", "?")
        table.add_row(c.get("claim", c.get("id", "?")), f"[{colour.get(v, 'white')}]{v}[/]", str(c.get("detail", "")))
    console.print(table)


# --------------------------------------------------------------------------- lipschitz
def _load_npy(path: str, name: str):
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CliError(f"{name}: file not found: {p}")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise CliError(f"{name}: cannot read {p}: {exc}") from exc


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
    from empirical.lipschitz import conv_operator_norm
    from theory import convolution as C
    from theory.registry import get

    kernel = _load_npy(args.kernel, "KERNEL")
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

    from empirical.attention import dot_product_attention, l2_attention
    from empirical.lipschitz import global_lipschitz_lower_bound
    from theory import attention as A
    from theory.registry import get

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


# --------------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    v = float(text)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="boundlab", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    for name, fn, help_ in (("demo", cmd_demo, "verification (ci profile) + a small TopoLip experiment + the HTML report"),
                            ("verify", cmd_verify, "run the verification suite, write a JSON summary")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--out", default="boundlab-results", help="results folder (default: %(default)s)")
        s.add_argument("--corpus", default=None, help="counterexample corpus folder (default: the shipped one)")
        if name == "demo":
            s.add_argument("--skip-experiment", action="store_true", help="verification and report only")
            s.add_argument("--device", default=None, help="cpu (default) or cuda for the experiment")
        if name == "verify":
            s.add_argument("--profile", choices=("ci", "campaign", "thorough"), default="ci",
                           help="ci: derandomized, fast; campaign: 100 examples per property, seeded; thorough: 1000")
            s.add_argument("--json", default=None, help="summary path (default: OUT/verify.json)")
            s.add_argument("-k", "--select", default=None, help="pytest -k expression to run a subset")
            s.add_argument("--seed", type=int, default=None, help="Hypothesis seed (thorough profile)")
            s.add_argument("--campaign", action="store_true",
                           help="run the suite once per seed in --seeds (OUT/campaign/<profile>-s<seed>-<hash>/)")
            s.add_argument("--seeds", default="0,1,2", help="campaign seeds, comma-separated (default: %(default)s)")
            s.add_argument("--workers", type=_positive_int, default=None,
                           help="campaign on a local Dask cluster of N worker processes")
            s.add_argument("--scheduler", default=None,
                           help="campaign on an existing Dask cluster, e.g. tcp://HOST:8786")
        s.set_defaults(func=fn)

    s = sub.add_parser("bounds", help="list every registered bound")
    s.add_argument("--json", default=None)
    s.set_defaults(func=cmd_bounds)

    lip = sub.add_parser("lipschitz", help="bounds and empirical lower bound for one saved layer")
    lsub = lip.add_subparsers(dest="layer", required=True)
    c = lsub.add_parser("conv", help="a conv kernel saved as .npy (c_out, c_in, k_h, k_w)")
    c.add_argument("kernel", metavar="KERNEL.npy")
    c.add_argument("--input-size", type=_positive_int, required=True)
    c.add_argument("--padding", choices=("circular", "zeros"), default="circular")
    c.add_argument("--stride", type=_positive_int, default=1)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default=None)
    c.add_argument("--json", default=None)
    c.set_defaults(func=cmd_lipschitz_conv)
    a = lsub.add_parser("attention", help="attention weights saved as .npz (query, key, value[, output])")
    a.add_argument("weights", metavar="WEIGHTS.npz")
    a.add_argument("--tokens", type=_positive_int, required=True)
    a.add_argument("--radius", type=_positive_float, required=True)
    a.add_argument("--heads", type=_positive_int, default=None, help="split 2-D (d, H*d_k) weights into heads")
    a.add_argument("--restarts", type=_positive_int, default=8)
    a.add_argument("--steps", type=_positive_int, default=30)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--device", default=None)
    a.add_argument("--json", default=None)
    a.set_defaults(func=cmd_lipschitz_attention)
    _register_command_modules(sub)
    return p


def _register_command_modules(sub) -> None:
    """Add the subcommands of every module in :mod:`boundlab.commands` (each defines ``register(subparsers)``)."""
    import importlib
    import pkgutil

    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)


def main(argv: list[str] | None = None) -> int:
    from theory._validate import BoundInputError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, BoundInputError, FileNotFoundError) as exc:
        console.print(f"[red]boundlab {args.command}: {exc}[/]")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
