"""Benchmarks run with ``python -m pytest benchmarks`` (pytest-benchmark); they are not part of the default run."""
