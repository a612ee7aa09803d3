"""``boundlab report``: render a results folder into one self-contained, offline HTML file.

Reads only result files (``docs/results.md``) through :func:`reports.build`; writes ``OUT/report.html``.
Exit status: 0 when the report was written, also when some files were missing or malformed (each is named on
stderr and in the report's "Problems" section); 2 when nothing at all could be read (the report, listing why,
is still written).
"""

from __future__ import annotations

from pathlib import Path

from ._common import CliError, console, positive_float


def cmd_report(args) -> int:
    from boundlab.reports.html import build

    results = Path(args.results)
    if not results.is_dir():
        raise CliError(f"--results: folder not found: {results}")
    out, res = build(results, Path(args.out) if args.out else results, threshold=args.threshold)
    if not res.files_read:
        raise CliError(f"--results: no readable result file in {results} (report listing the problems: {out})")
    console.print(f"report -> {out} ({len(res.files_read)} files read, {len(res.problems)} problem(s))")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("report", help="render the results folder into one offline HTML report")
    s.add_argument("--results", default="boundlab-results", help="results folder to read (default: %(default)s)")
    s.add_argument("--out", default=None, help="folder for report.html (default: the results folder)")
    s.add_argument("--threshold", type=positive_float, default=1.3,
                   help="benchmark steps worse than this factor are flagged (default: %(default)s)")
    s.set_defaults(func=cmd_report)
