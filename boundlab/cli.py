"""``boundlab`` command line: the parser and :func:`main`. Every command lives in :mod:`boundlab.commands`.

Each module of :mod:`boundlab.commands` defines ``register(subparsers)``; :func:`main` runs the chosen command and
maps errors to exit statuses in one place (:mod:`boundlab.io.errors`): bad input exits 2, a failed solve or check
exits 1, each with one line on stderr naming the argument or file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .io.errors import BoundlabError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="boundlab", description="Executable, falsifiable Lipschitz bounds for attention "
                                "and convolution.")
    p.add_argument("--version", action="version", version=f"boundlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BoundlabError as exc:
        print(f"boundlab {args.command}: {exc}", file=sys.stderr)
        return exc.exit_status
    except FileNotFoundError as exc:  # an OS-level missing file not caught by a command: still bad input
        print(f"boundlab {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
