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
        console.print(comparison_line(read_json(path)))
    from boundlab.reports import build_report

    report = build_report(out, out)
    console.print(f"[bold]report[/] -> {report}")
    return status


def comparison_line(doc: dict) -> str:
    """One line of an SDP comparison document (``OUT/lipsdp/<name>.json``): its upper bounds and lower bounds."""
    uppers = ", ".join(f"{r['name']} {r['value']:.5g} ({r['norm']})" for r in doc["results"]
                       if r["kind"] in ("upper", "exact") and isinstance(r.get("value"), (int, float)))
    lowers = ", ".join(f"{norm} {v['value']:.5g}" for norm, v in doc["lower_bounds"].items()
                       if v and isinstance(v.get("value"), (int, float)))
    return f"[bold]{doc['title']}[/]: upper bounds {uppers}; empirical lower bounds {lowers}"


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
