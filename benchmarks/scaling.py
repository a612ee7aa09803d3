"""Cost curves for docs/scaling.md: how persistence, LipSDP and the falsification suite grow with size.

Run ``python benchmarks/scaling.py --out docs/scaling.json`` on a quiet machine; it prints a table and writes the
measurements (with the metadata block: versions, commit, machine) as JSON. Each point is the best of ``--repeat``
wall-clock runs. Not part of the test suite (minutes of work).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def persistence_curve(sizes, dim: int, repeat: int) -> list[dict]:
    """H0+H1 diagrams of N Gaussian points in ``dim`` dimensions (distance matrix O(N^2 D), then Rips)."""
    from boundlab.empirical.topology import persistence_diagrams

    rows = []
    for n in sizes:
        x = np.random.default_rng(0).standard_normal((n, dim))
        t_dist = _best(lambda: x @ x.T, repeat)  # the O(N^2 D) Gram product that any distance matrix needs
        t = _best(lambda: persistence_diagrams(x, maxdim=1), repeat)
        rows.append({"n": n, "dim": dim, "seconds": t, "distance_part_seconds": t_dist})
    return rows


def lipsdp_curve(widths, depth: int, repeat: int) -> list[dict]:
    """LipSDP-Neuron (CVXOPT, certified) on random ReLU nets 10 -> width x depth -> 1; LMI side = 10 + depth*width."""
    from boundlab.theory.lipsdp import FeedForward, lipsdp

    rows = []
    for w in widths:
        rng = np.random.default_rng(w)
        sizes = [10] + [w] * depth + [1]
        ws = [rng.standard_normal((sizes[i + 1], sizes[i])) / np.sqrt(sizes[i]) for i in range(len(sizes) - 1)]
        net = FeedForward.from_weights(ws, "relu")
        res = {}

        def solve():
            res["r"] = lipsdp(net, "neuron")

        t = _best(solve, repeat)
        rows.append({"width": w, "depth": depth, "lmi_size": 10 + depth * w, "seconds": t,
                     "certified": res["r"].certified, "naive": res["r"].naive_bound})
    return rows


def hypothesis_curve(examples, select: str) -> list[dict]:
    """Wall time of the verification properties matching ``select`` at several max_examples (one process each)."""
    rows = []
    vdir = Path(__file__).resolve().parents[1] / "verification"
    for m in examples:
        code = (f"import sys, pytest; from hypothesis import settings, HealthCheck; "
                f"settings.register_profile('scale', max_examples={m}, deadline=None, derandomize=True, database=None, "
                f"suppress_health_check=list(HealthCheck)); "
                f"sys.exit(pytest.main(['{vdir}', '-q', '-p', 'no:cacheprovider', '-k', '{select}', "
                f"'--hypothesis-profile=scale']))")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=False,
                       env={**os.environ, "BOUNDLAB_PROFILE": "ci"})
        rows.append({"max_examples": m, "select": select, "seconds": time.perf_counter() - t})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/scaling.json")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = p.parse_args(argv)
    from boundlab.io.results import metadata_block, write_json

    q = args.quick
    doc = {**metadata_block({"script": "benchmarks/scaling.py", "quick": q, "repeat": args.repeat}),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
           "persistence": persistence_curve([125, 250, 500] if q else [250, 500, 1000, 2000], 4096, args.repeat),
           "lipsdp": lipsdp_curve([8, 16, 32] if q else [16, 32, 64, 100], 2, args.repeat),
           "hypothesis": hypothesis_curve([4, 12] if q else [12, 50, 200], "circular or bounded_dp")}
    write_json(args.out, doc)
    for key in ("persistence", "lipsdp", "hypothesis"):
        print(key)
        for row in doc[key]:
            print("  ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
