"""``boundlab demo``: the main job on the embedded default data: verification (ci profile) and its summary, a small
TopoLip experiment on the bundled digits, the SDP-beside-analytic comparisons, and the offline HTML report."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from ..io.results import read_json
from ._common import console, device
from .verify import add_verify_options, cmd_verify


def cmd_demo(args) -> int:
    """The main job on the embedded default data: verification (ci profile) and its summary, a small TopoLip
    experiment on the bundled digits, then the HTML report of both."""
    args.profile, args.select, args.json, args.seed, args.campaign = "ci", None, None, None, False
    status = cmd_verify(args)
    out = Path(args.out)
    if not args.skip_experiment:
        from boundlab.empirical.topolip_experiment import run_demo

        console.print("[bold]boundlab demo[/]: TopoLip experiment on the embedded digits (small)")
        verdicts = run_demo(out, device=args.device)
        _print_verdicts(verdicts)
    from boundlab.empirical.sdp_comparison import write_sdp_comparison

    for path in write_sdp_comparison(out, seed=0):
        doc = read_json(path)
        certified = ", ".join(f"{r['form']} {r['certified']:.5g}" for r in doc["results"])
        analytic = ", ".join(f"{k} {v:.5g}" for k, v in doc["analytic"].items())
        console.print(f"[bold]{doc['network']}[/]: SDP {certified}; analytic {analytic}; "
                      f"empirical lower bound {doc['empirical_lower']:.5g}")
    from boundlab.reports import build_report

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




def register(subparsers) -> None:
    s = subparsers.add_parser("demo", help="verification (ci profile) + a small TopoLip experiment + the HTML report")
    add_verify_options(s, campaign=False)
    s.add_argument("--skip-experiment", action="store_true", help="verification and report only")
    s.add_argument("--device", type=device, default=None, help="cpu (default) or cuda for the experiment")
    s.set_defaults(func=cmd_demo)
