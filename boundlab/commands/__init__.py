"""Subcommands of ``boundlab`` beyond the core ones: each module defines ``register(subparsers)``.

A command module adds its parser with ``subparsers.add_parser(...)`` and ``set_defaults(func=...)``; ``func``
takes the parsed arguments and returns an exit status. Raise :class:`boundlab.cli.CliError` (or
``theory.InputError``) for user errors: they print one line and exit with status 2.
"""
