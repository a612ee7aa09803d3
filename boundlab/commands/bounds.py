"""``boundlab bounds``: the registry as a table (name, kind, confidence, what it covers, source); ``--json OUT``."""

from __future__ import annotations

from rich.table import Table

from ..io.results import metadata_block, write_json
from ._common import console, output_file


def cmd_bounds(args) -> int:
    from boundlab.theory.registry import all_bounds

    records = all_bounds()
    if args.json:
        write_json(args.json, {**metadata_block({"command": "bounds"}), "bounds": [b.as_dict() for b in records]})
    table = Table(title=f"boundlab: {len(records)} registered bounds")
    for col in ("name", "kind", "norm", "confidence", "expect", "covers", "source"):
        table.add_column(col, overflow="fold")
    for b in records:
        expect = "[red]falsified[/]" if b.expect == "falsified" else "holds"
        table.add_row(b.name, b.kind, b.norm, b.confidence, expect, b.refutation or b.covers, b.source)
    console.print(table)
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("bounds", help="list every registered bound")
    s.add_argument("--json", type=output_file, default=None, metavar="OUT", help="also write the registry as JSON to OUT")
    s.set_defaults(func=cmd_bounds)
