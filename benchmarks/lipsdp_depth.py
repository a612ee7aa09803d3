"""LipSDP at depth (issue 16): monolithic vs chordal LipSDP-Neuron, ECLipsE and ECLipsE-Fast on seeded random nets.

Networks: ReLU, input 10, output 1, hidden ``DEPTH x WIDTH``, weights :math:`W_k\\sim N(0,1/\\text{fan\\_in})` drawn
from ``numpy.random.default_rng([seed, depth, width])`` (:func:`depth_net`; ``--seed``, default 0). Every solve
runs in a fresh subprocess (one BLAS thread, as :func:`boundlab.theory.lipsdp.lipsdp` sets by default), which
reports the certified value, the wall and CPU time of the call (imports excluded; on a loaded machine the CPU time
is the steadier number) and the whole process's peak RSS
(``ru_maxrss``; the process after imports, before the solve, is reported as ``rss_after_imports_mb``).
Methods (``lipsdp(net, form, method=...)``): ``monolithic`` and ``chordal`` (LipSDP-Neuron, the same optimum),
``eclipse`` (Neuron LMI) and ``eclipse-fast`` (Layer LMI). The monolithic solve is skipped above
``--max-monolithic`` neurons (default 512: 1024 neurons would take tens of minutes and several GB); ECLipsE-Fast
alone also runs on 32 x 256. ``rel_diff`` is chordal / monolithic - 1 (certified values).

    python benchmarks/lipsdp_depth.py --out docs/lipsdp_depth.json          # prints a markdown table too
    python benchmarks/lipsdp_depth.py --nets 8x64 --methods chordal,eclipse  # a subset

Not part of the test suite (the monolithic solves take minutes); ``benchmarks/test_lipsdp.py`` has the
pytest-benchmark of 8 x 64 chordal vs monolithic.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NETS = ("4x64", "8x32", "8x64", "4x128", "16x32", "16x64", "32x32")
FAST_ONLY = ("32x256",)
METHODS = ("monolithic", "chordal", "eclipse", "eclipse-fast")
FORMS = {"monolithic": "neuron", "chordal": "neuron", "eclipse": "neuron", "eclipse-fast": "layer"}


def parse_net(text: str) -> tuple[int, int]:
    depth, _, width = text.lower().partition("x")
    d, w = int(depth), int(width)
    if d < 1 or w < 1:
        raise ValueError(f"net: expected DEPTHxWIDTH with positive integers, got {text!r}")
    return d, w


def depth_net(depth: int, width: int, seed: int = 0, n_in: int = 10, n_out: int = 1):
    """The seeded benchmark network: ReLU, ``n_in -> width x depth -> n_out``, :math:`W\\sim N(0,1/\\text{fan\\_in})`."""
    from boundlab.theory.lipsdp import FeedForward

    rng = np.random.default_rng([seed, depth, width])
    widths = [n_in] + [width] * depth + [n_out]
    ws = [rng.standard_normal((widths[i + 1], widths[i])) / np.sqrt(widths[i]) for i in range(len(widths) - 1)]
    return FeedForward.from_weights(ws, "relu")


def _child(spec: dict) -> dict:
    """One solve in this (fresh) process; returns what the parent records."""
    import resource

    from boundlab.theory import lipsdp as L

    import cvxpy  # noqa: F401  (imported before the clock starts, as a warm user process would have it)

    net = depth_net(spec["depth"], spec["width"], spec["seed"])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t, c = time.perf_counter(), time.process_time()
    res = L.lipsdp(net, spec["form"], method=spec["method"])
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    piece = res.pieces[0] if res.pieces else {}
    return {"certified": res.certified, "solver_value": res.solver_value, "seconds": seconds, "cpu_seconds": cpu,
            "solve_seconds": res.solve_seconds, "method": res.method, "solver": res.solver, "status": res.status,
            "lmi_size": res.lmi_size, "naive_bound": res.naive_bound,
            "newton_steps": piece.get("newton_steps"), "blends": piece.get("blends"),
            "rss_after_imports_mb": rss0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_one(depth: int, width: int, method: str, seed: int, timeout: float) -> dict:
    spec = {"depth": depth, "width": width, "method": method, "form": FORMS[method], "seed": seed}
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:g} s", "process_seconds": time.perf_counter() - t}
    row = {**spec, "process_seconds": time.perf_counter() - t}
    if out.returncode != 0:
        return {**row, "error": (out.stderr.strip().splitlines() or ["exit status %d" % out.returncode])[-1]}
    return {**row, **json.loads(out.stdout.strip().splitlines()[-1])}


def _fmt(v, spec="{:.6g}"):
    return "-" if v is None else spec.format(v)


def markdown(rows: list[dict], max_monolithic: int = 512) -> str:
    """One line per network: certified value, seconds and peak RSS per method, and chordal vs monolithic."""
    by = {}
    for r in rows:
        by.setdefault((r["depth"], r["width"]), {})[r["method"]] = r
    head = "| net (hidden) | neurons | " + " | ".join(f"{m} (certified / wall s (cpu s) / peak MB)" for m in METHODS) + \
           " | chordal / monolithic - 1 |"
    lines = [head, "|" + "---|" * (len(METHODS) + 3)]
    for (d, w), ms in by.items():
        cells = []
        for m in METHODS:
            r = ms.get(m)
            if r is None:
                cells.append(f"skipped (> {max_monolithic} neurons)" if m == "monolithic" and d * w > max_monolithic
                             and "chordal" in ms else "-")
            elif "error" in r:
                cells.append(f"failed: {r['error'][:60]}")
            else:
                cells.append(f"{r['certified']:.6g} / {r['seconds']:.3g} s ({r['cpu_seconds']:.3g} cpu) / "
                             f"{r['peak_rss_mb']:.0f}")
        mono, chord = ms.get("monolithic"), ms.get("chordal")
        rel = "-"
        if mono and chord and "error" not in mono and "error" not in chord:
            rel = f"{chord['certified'] / mono['certified'] - 1:+.2e}"
        lines.append(f"| {d} x {w} | {d * w} | " + " | ".join(cells) + f" | {rel} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--nets", default=",".join(NETS), help="DEPTHxWIDTH list (default: %(default)s)")
    p.add_argument("--fast-only", dest="fast_only", default=",".join(FAST_ONLY),
                   help="nets for ECLipsE-Fast alone (default: %(default)s; '' for none)")
    p.add_argument("--methods", default=",".join(METHODS), help="subset of %(default)s")
    p.add_argument("--max-monolithic", dest="max_monolithic", type=int, default=512,
                   help="skip the monolithic solve above this many hidden neurons (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="weight seed (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per solve (default: %(default)s)")
    p.add_argument("--out", default=None, help="write the rows as JSON (with the metadata block) to OUT")
    p.add_argument("--note", default="", help="a note stored with the results (e.g. the machine's load)")
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        p.error(f"--methods: unknown {sorted(unknown)}; expected a subset of {METHODS}")
    nets = [parse_net(t) for t in args.nets.split(",") if t]
    fast_only = [parse_net(t) for t in args.fast_only.split(",") if t]
    plan = [(d, w, m) for d, w in nets for m in methods
            if not (m == "monolithic" and d * w > args.max_monolithic)]
    plan += [(d, w, "eclipse-fast") for d, w in fast_only if "eclipse-fast" in methods]
    skipped = [f"{d}x{w}" for d, w in nets if "monolithic" in methods and d * w > args.max_monolithic]
    load0 = os.getloadavg()
    rows = []
    for d, w, m in plan:
        row = run_one(d, w, m, args.seed, args.timeout)
        rows.append(row)
        msg = row.get("error") or f"{row['certified']:.6g} in {row['seconds']:.3g} s, peak {row['peak_rss_mb']:.0f} MB"
        print(f"{d} x {w} {m}: {msg}", file=sys.stderr, flush=True)
    table = markdown(rows, args.max_monolithic)
    print(table)
    if skipped:
        print(f"\nmonolithic skipped above {args.max_monolithic} neurons: {', '.join(skipped)}")
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "loadavg_start": load0, "loadavg_end": os.getloadavg()}
    print(f"\nmachine: {machine['cpus']} cpus, load average {load0[0]:.2f} at start, "
          f"{machine['loadavg_end'][0]:.2f} at end. {args.note}")
    if args.out:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from boundlab.io.results import metadata_block, write_json

        config = {"command": "benchmarks/lipsdp_depth.py", "nets": args.nets, "fast_only": args.fast_only,
                  "methods": methods, "forms": FORMS, "max_monolithic": args.max_monolithic,
                  "weights": "ReLU, input 10, output 1, W ~ N(0, 1/fan_in), rng = default_rng([seed, depth, width])",
                  "machine": machine, "note": args.note, "monolithic_skipped": skipped}
        write_json(args.out, {**metadata_block(config, args.seed), "rows": rows, "markdown": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
