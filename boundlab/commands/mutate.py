"""``boundlab mutate``: mutation analysis of the verification suite (how wrong must a bound be to be caught?).

Runs each chosen bound's properties with a mutant in place (generic scalings and the formula mutants declared on
its record; :mod:`boundlab.verification.mutate`), as executor units, and prints per bound and mutant whether it was
caught, by which property, with the shrunk counterexample. Writes ``OUT/mutate/<bound>/<unit>.json`` per unit and
``OUT/mutate/summary.json`` (read by the report's Teeth section). Exit status 1 when a ``known_false`` mutant was
not caught (the suite lacks teeth there), 0 otherwise.
"""

from __future__ import annotations

from rich.table import Table

from ._common import CliError, console, output_file, positive_float, positive_int
from ._progress import console_reporter


def cmd_mutate(args) -> int:
    from boundlab.io.executor import make_executor
    from boundlab.theory.registry import get
    from boundlab.verification.mutate import mutation_units, summarise
    from boundlab.verification.properties import load_property_modules

    for name in args.bound or ():
        try:
            get(name)
        except KeyError:
            raise CliError(f"--bound: unknown bound {name!r} (boundlab bounds lists them)") from None
    factors = tuple(args.factor) if args.factor else (0.5, 0.9, 0.99)
    if any(not 0 < f < 1 for f in factors):
        raise CliError(f"--factor: expected factors in (0, 1) (the bound is scaled by them), got {factors}")
    load_property_modules()
    corpus_root = None
    if args.corpus == "shipped":
        from boundlab.verification.corpus import SHIPPED as corpus_root
    elif args.corpus:
        corpus_root = args.corpus
    units = mutation_units(args.out, args.bound, factors, args.profile, args.max_examples, args.seed,
                           formula=not args.no_formula, corpus_root=corpus_root)
    if not units:
        raise CliError("--bound: the chosen bounds have no mutants (statements expected to be falsified have none)")
    try:
        executor = make_executor(args.scheduler, args.workers)
    except OSError as exc:
        raise CliError(f"--scheduler: {exc}") from exc
    with executor, console_reporter() as progress:
        executor.run(units, progress=progress)
    config = {"command": "mutate", "bounds": args.bound, "factors": list(factors), "profile": args.profile,
              "max_examples": args.max_examples, "seed": units[0].kwargs["seed"], "corpus": str(corpus_root or "")}
    doc = summarise(units, args.out, config)
    if args.json:
        from boundlab.io.results import write_json

        write_json(args.json, doc)
    table = Table(title=f"mutation analysis ({args.profile}): {len(doc['mutants'])} mutants of "
                        f"{len(doc['bounds'])} bounds")
    for col in ("bound", "mutant", "falsity", "caught", "by", "counterexample / detail", "s"):
        table.add_column(col, overflow="fold")
    missed_known = 0
    for r in sorted(doc["mutants"], key=lambda r: (r["bound"], r["kind"], r["name"])):
        caught = "[green]caught[/]" if r["caught"] else ("[red]MISSED[/]" if r["falsity"] == "known_false"
                                                           else "[yellow]not caught[/]")
        missed_known += (not r["caught"]) and r["falsity"] == "known_false"
        table.add_row(r["bound"], r["name"], r["falsity"], caught, r.get("property") or "-",
                      (r.get("error") or r.get("detail") or "")[:160], f"{r['seconds']:.1f}")
    console.print(table)
    areas = Table(title="caught / total per area (known-false caught / known-false)")
    for col in ("area", "caught", "known false caught"):
        areas.add_column(col)
    for name, a in sorted(doc["areas"].items()):
        areas.add_row(name, f"{a['caught']} / {a['mutants']}", f"{a['known_false_caught']} / {a['known_false']}")
    console.print(areas)
    console.print(f"summary -> {args.out}/mutate/summary.json")
    return 1 if missed_known else 0


def register(subparsers) -> None:
    s = subparsers.add_parser("mutate", help="mutation analysis: run each bound's properties with wrong versions "
                              "of it in place")
    s.add_argument("--bound", action="append", default=None, metavar="NAME",
                   help="a bound to mutate (repeatable; default: every registered bound)")
    s.add_argument("--factor", action="append", type=positive_float, default=None, metavar="F",
                   help="generic scalings of upper bounds (repeatable; default: 0.5, 0.9, 0.99)")
    s.add_argument("--no-formula", action="store_true", help="only the generic scalings, not the declared mutants")
    s.add_argument("--profile", choices=("ci", "campaign", "thorough"), default="ci",
                   help="Hypothesis profile of the searches (default: %(default)s)")
    s.add_argument("--max-examples", type=positive_int, default=None,
                   help="examples per property search (default: the profile's)")
    s.add_argument("--seed", type=int, default=None,
                   help="Hypothesis seed (default: the ci seed of the checked-out commit, as in the default test run)")
    s.add_argument("--corpus", default=None, metavar="DIR",
                   help="where the shrunk counterexample of each caught mutant is saved (default: OUT/mutate/corpus; "
                   "'shipped': verification/corpus, so that every later test run replays it against the true bound)")
    s.add_argument("--workers", type=positive_int, default=None, help="run the units on a local Dask cluster")
    s.add_argument("--scheduler", default=None, help="run the units on an existing Dask cluster (tcp://HOST:PORT)")
    s.add_argument("--out", default="boundlab-results", help="results folder (default: %(default)s)")
    s.add_argument("--json", type=output_file, default=None, metavar="OUT", help="also write the summary to OUT")
    s.set_defaults(func=cmd_mutate)
