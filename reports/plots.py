"""Plots for the report: matplotlib (Agg) figures returned as inline ``<svg>`` strings (glyphs as paths, no fonts,
no scripts, nothing fetched). Every function only draws the numbers it is given."""

from __future__ import annotations

import io
import math

from .mathsvg import strip_svg

_RC = {"svg.fonttype": "path", "font.size": 8, "axes.titlesize": 9, "axes.grid": True, "grid.alpha": 0.3,
       "figure.dpi": 72}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_svg(fig, label: str) -> str:
    """Serialise ``fig`` to an inline SVG tagged with ``data-plot=label`` (the browser test looks for these)."""
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = strip_svg(buf.getvalue())
    return svg.replace("<svg ", f'<svg class="plot" data-plot="{label}" role="img" ', 1)


def bound_scatter(lower: list[float], upper: list[float], name: str, kind: str) -> str:
    """Empirical lower bound (x) vs the bound's value (y) over all cases, the line y = x, violations in red."""
    plt = _plt()
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(3.6, 3.2))
        pts = [(lo, up) for lo, up in zip(lower, upper) if math.isfinite(lo) and math.isfinite(up)]
        ok = [(lo, up) for lo, up in pts if lo <= up]
        bad = [(lo, up) for lo, up in pts if lo > up]
        log = bool(pts) and all(lo > 0 and up > 0 for lo, up in pts)
        if ok:
            ax.scatter(*zip(*ok), s=12, alpha=0.7, color="#1f77b4", label="lower <= bound")
        if bad:
            ax.scatter(*zip(*bad), s=18, color="#d62728", marker="x", label="lower > bound (violation)")
        if pts:
            lo_all = min(min(p) for p in pts)
            hi_all = max(max(p) for p in pts)
            ax.plot([lo_all, hi_all], [lo_all, hi_all], color="k", lw=0.8, ls="--", label="y = x")
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("exact value" if kind == "exact" else "empirical lower bound")
        ax.set_ylabel("bound (theory)")
        ax.set_title(name)
        ax.legend(fontsize=6, loc="upper left")
    return to_svg(fig, f"scatter:{name}")


def ratio_hist(ratios: list[float], name: str) -> str:
    """Distribution of the tightness ratio lower / bound (1 = tight, > 1 = falsified)."""
    plt = _plt()
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(3.6, 3.2))
        vals = [r for r in ratios if r is not None and math.isfinite(r)]
        if vals:
            lo, hi = min(vals), max(vals)
            pad = max((hi - lo) * 0.05, 1e-6 * max(abs(hi), 1e-300))  # all-equal ratios (exact bounds) still plot
            ax.hist(vals, bins=min(30, max(5, len(vals) // 3)), range=(lo - pad, hi + pad), color="#2ca02c",
                    alpha=0.8)
        ax.axvline(1.0, color="#d62728", lw=1, ls="--", label="ratio = 1")
        ax.set_xlabel("tightness ratio = lower / bound")
        ax.set_ylabel("cases")
        ax.set_title(f"{name} ({len(vals)} cases)")
        ax.legend(fontsize=6)
    return to_svg(fig, f"ratio:{name}")


def layer_curves(panels: dict[str, dict[int, list[tuple[int, float]]]], title: str, label: str) -> str:
    """Small multiples: one panel per metric, x = layer index, one line per epoch (colour = epoch)."""
    plt = _plt()
    names = list(panels)
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.1 * rows), squeeze=False)
        cmap = plt.get_cmap("viridis")
        for ax, metric in zip(axes.flat, names):
            epochs = sorted(panels[metric])
            for k, ep in enumerate(epochs):
                xs, ys = zip(*sorted(panels[metric][ep])) if panels[metric][ep] else ((), ())
                color = cmap(k / max(1, len(epochs) - 1))
                ax.plot(xs, ys, marker="o", ms=2.5, lw=1, color=color, label=f"epoch {ep}")
            ax.set_title(metric)
            ax.set_xlabel("layer")
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        if names:
            handles, labels = axes.flat[0].get_legend_handles_labels()
            if handles:
                fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=6,
                           bbox_to_anchor=(0.5, -0.02))
        fig.suptitle(title)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
    return to_svg(fig, label)


def xy_lines(series: dict[str, list[tuple[float, float]]], title: str, xlabel: str, ylabel: str, label: str,
             logx: bool = False) -> str:
    """Named lines on one axis (robustness curves: accuracy vs epsilon per attack; training curves)."""
    plt = _plt()
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(3.6, 2.8))
        for name, pts in series.items():
            if pts:
                xs, ys = zip(*sorted(pts))
                ax.plot(xs, ys, marker="o", ms=3, lw=1, label=name)
        if logx and all(x > 0 for pts in series.values() for x, _ in pts):
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if any(series.values()):
            ax.legend(fontsize=6)
    return to_svg(fig, label)


def bench_trend(commits: list[str], times: list[float], ratios: list[float | None], flags: list[bool],
                name: str) -> str:
    """Time (min, s) and in-run ratio across saved commits; flagged regressions in red."""
    plt = _plt()
    with plt.rc_context(_RC):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.2, 2.6))
        x = list(range(len(commits)))
        ax1.plot(x, times, marker="o", lw=1)
        ax1.set_ylabel("min time (s)")
        rx = [(i, r) for i, r in zip(x, ratios) if r is not None]
        if rx:
            ax2.plot(*zip(*rx), marker="o", lw=1, color="#ff7f0e")
        ax2.set_ylabel("in-run ratio (baseline / target)")
        for i, f in zip(x, flags):
            if f:
                for ax in (ax1, ax2):
                    ax.axvline(i, color="#d62728", lw=1, ls=":")
        for ax in (ax1, ax2):
            ax.set_xticks(x)
            ax.set_xticklabels([c[:8] for c in commits], rotation=45, fontsize=6)
        fig.suptitle(name, fontsize=8)
        fig.tight_layout()
    return to_svg(fig, f"bench:{name}")
