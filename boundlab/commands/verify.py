"""``boundlab verify``: run the verification suite (pytest + Hypothesis) and print its summary; ``--campaign``
runs it once per seed as executor units (in process, local Dask, or a cluster).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.table import Table

from ..io.results import metadata_block, read_json
from ..theory.registry import expectation_met
from ._common import CliError, console, output_file, positive_int, seed_list


def run_verification(profile: str, json_path: Path, select: str | None = None, corpus: str | None = None,
                     seed: int | None = None, quiet: bool = False) -> int:
    """Run the verification suite (pytest) in a subprocess; returns pytest's exit status."""
    from boundlab import verification

    vdir = Path(verification.__file__).resolve().parent
    cmd = [sys.executable, "-m", "pytest", str(vdir), "-q", "-p", "no:cacheprovider", "--boundlab-progress",
           f"--hypothesis-profile={profile}", f"--boundlab-json={json_path}", "--rootdir", str(vdir.parent)]
    if select:
        cmd += ["-k", select_expression(select)]
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


def select_expression(select: str) -> str:
    """A ``-k`` expression in which registered bound names (``conv.kernel_matrix``, as the summary prints them)
    stand for the properties that test them; anything else is passed to pytest unchanged.

    Raises :class:`CliError` for a name that looks like a bound (``area.name``) but is not registered, or a
    registered bound without a property (nothing would run)."""
    import re

    from ..theory.registry import all_bounds
    from ..verification.properties import load_property_modules, properties_of

    names = {b.name for b in all_bounds()}

    def expand(m: re.Match) -> str:
        token = m.group(0)
        if token not in names:
            area = token.split(".")[0]
            if any(n.startswith(area + ".") for n in names):
                raise CliError(f"-k: {token!r} is not a registered bound (see `boundlab bounds`)")
            return token
        load_property_modules()
        tests = sorted({p.name for p in properties_of(token)})
        if not tests:
            raise CliError(f"-k: bound {token!r} has no property (nothing would run)")
        return "(" + " or ".join(tests) + ")"

    return re.sub(r"[A-Za-z_][\w]*(?:\.[\w]+)+", expand, select)


def print_summary(json_path: Path) -> bool:
    """Print the verification summary table; returns True when every expectation was met."""
    doc = read_json(json_path)
    table = Table(title=f"verification summary ({doc.get('profile')}, commit {doc.get('commit')})")
    for col in ("bound", "confidence", "expect", "examples", "falsified", "worst ratio", "verdict"):
        table.add_column(col, overflow="fold")
    ok = True
    for p in doc["properties"]:
        met = expectation_met(p["expect"], p["falsified"])
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
    from ..io.executor import commit_result

    out = Path(out_dir) / "verify.json"
    status = run_verification(profile, out, select, corpus, seed, quiet=True)
    doc = read_json(out) if out.is_file() else {"properties": []}
    unexpected = [p["bound"] for p in doc["properties"] if not expectation_met(p["expect"], p["falsified"])]
    summary = {"profile": profile, "seed": seed, "pytest_status": status, "verify": str(out),
               "properties": len(doc["properties"]), "unexpected": unexpected}
    commit_result(Path(out_dir) / "unit.json", {**metadata_block({"profile": profile, "select": select}, seed),
                                                **summary})
    return summary


def cmd_campaign(args) -> int:
    """``verify --campaign``: the suite under many seeds, in process or on Dask; one folder per seed."""
    from ..io.executor import Unit, make_executor, unit_key

    seeds = seed_list(args.seeds)
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




def add_verify_options(s, campaign: bool = True) -> None:
    s.add_argument("--out", default="boundlab-results", help="results folder (default: %(default)s)")
    s.add_argument("--corpus", default=None, help="counterexample corpus folder (default: the shipped one)")
    if not campaign:
        return
    s.add_argument("--profile", choices=("ci", "campaign", "thorough"), default="ci",
                   help="ci: 50 examples per property, seeded from the commit (the default test run); campaign: 100; "
                   "thorough: 1000 (default: %(default)s)")
    s.add_argument("--json", type=output_file, default=None, help="summary path (default: OUT/verify.json)")
    s.add_argument("-k", "--select", default=None,
                   help="pytest -k expression to run a subset; bound names (conv.kernel_matrix) select their properties")
    s.add_argument("--seed", type=int, default=None,
                   help="Hypothesis seed (default: derived from the commit; recorded in the summary)")
    s.add_argument("--campaign", action="store_true",
                   help="run the suite once per seed in --seeds (OUT/campaign/<profile>-s<seed>-<hash>/)")
    s.add_argument("--seeds", nargs="+", default=["0,1,2"],
                   help="campaign seeds: 0 1 2 or 0,1,2 (default: 0,1,2)")
    s.add_argument("--workers", type=positive_int, default=None,
                   help="campaign on a local Dask cluster of N worker processes")
    s.add_argument("--scheduler", default=None,
                   help="campaign on an existing Dask cluster, e.g. tcp://HOST:8786")


def register(subparsers) -> None:
    s = subparsers.add_parser("verify", help="run the verification suite, write a JSON summary")
    add_verify_options(s)
    s.set_defaults(func=cmd_verify)
