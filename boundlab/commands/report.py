"""``boundlab report``: render a results folder into one self-contained, offline HTML file.

Reads only result files (``docs/results.md``) through :func:`reports.build`; writes ``OUT/report.html`` (or
``--html FILE``), with ``--csv DIR`` also the report's tables as CSV and with ``--compare OLD`` a first section of
what changed since an older results folder. Exit status: 0 when the report was written, also when some files were
missing or malformed (each is named on stderr and in the report's "Problems" section); 2 when nothing at all could
be read (the report, listing why, is still written) or on bad arguments.
"""

from __future__ import annotations

from pathlib import Path

from ._common import CliError, console, err_console, output_file, positive_float


def cmd_report(args) -> int:
    from boundlab.reports.html import build

    if args.results is not None:  # the old spelling: --results DIR [--out DEST_DIR]
        err_console.print("[dim]--results is the old name of --out (the results folder); the report goes to "
                          "--html FILE[/]")
        results = Path(args.results)
        html_path = Path(args.html) if args.html else (Path(args.out) / "report.html" if args.out else None)
    else:
        results = Path(args.out or "boundlab-results")
        html_path = Path(args.html) if args.html else None
    flag = "--results" if args.results is not None else "--out"
    if not results.is_dir():
        raise CliError(f"{flag}: folder not found: {results}")
    if args.compare is not None and not Path(args.compare).is_dir():
        raise CliError(f"--compare: results folder not found: {args.compare}")
    if args.csv is not None and Path(args.csv).is_file():
        raise CliError(f"--csv: {args.csv} is a file; expected a folder for the CSV tables")
    out, res = build(results, results, threshold=args.threshold, compare=args.compare, html_path=html_path)
    if args.csv is not None:
        from boundlab.reports.export import write_csv

        for path in write_csv(res, args.csv):
            console.print(f"csv -> {path}")
    if not res.files_read:
        raise CliError(f"{flag}: no readable result file in {results} (report listing the problems: {out})")
    size = out.stat().st_size
    console.print(f"report -> {out} ({size / 1e6:.2f} MB, {len(res.files_read)} files read, "
                  f"{len(res.problems)} problem(s))")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("report", help="render the results folder into one offline HTML report")
    s.add_argument("--out", default=None, metavar="DIR",
                   help="the results folder to read, as for every command (default: boundlab-results)")
    s.add_argument("--html", type=output_file, default=None, metavar="FILE",
                   help="where to write the report (default: OUT/report.html)")
    s.add_argument("--csv", default=None, metavar="DIR", help="also write the report's tables as CSV files to DIR")
    s.add_argument("--compare", default=None, metavar="OLD",
                   help="an older results folder: the report opens with what changed since it")
    s.add_argument("--threshold", type=positive_float, default=1.3,
                   help="benchmark steps worse than this factor are flagged (default: %(default)s)")
    s.add_argument("--results", default=None, help="old name of --out (kept for scripts)")
    s.set_defaults(func=cmd_report)
