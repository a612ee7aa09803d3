"""Plots for the report: matplotlib (Agg) figures returned as inline ``<svg>`` strings (text as SVG text in the
page's sans-serif font, no scripts, nothing fetched). Every function only draws the numbers it is given; scatter
plots of many cases are decimated (every violation and the extremes kept, the count of points shown said)."""

from __future__ import annotations

import io
import math
import re

from .mathsvg import strip_svg

_RC = {"svg.fonttype": "none", "font.family": "sans-serif", "font.size": 8, "axes.titlesize": 9, "axes.grid": True,
       "grid.alpha": 0.3, "figure.dpi": 72, "svg.hashsalt": "boundlab"}
#: at most this many points per scatter plot (violations always kept)
MAX_POINTS = 60
#: the overview's ratio axis; a ratio outside is drawn at the edge as a triangle pointing outwards
OVERVIEW_RANGE = (1e-6, 1e6)
CONFIDENCE_COLOURS = {"standard": "#2e7d32", "derived": "#1f5fbf", "reconstructed": "#e08a00", "planted": "#8e44ad"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_axis(ax, which: str) -> None:
    """Log scale with labelled decades only and no minor ticks (minor labels overlap on short ranges, and every
    minor tick is an SVG element: they were half of the report's size)."""
    from matplotlib.ticker import LogLocator, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, numticks=6))
    axis.set_minor_locator(NullLocator())


def decimate(points: list[tuple[float, float]], keep=lambda p: False, limit: int = MAX_POINTS):
    """At most ``limit`` points: every point with ``keep(p)`` true, then an even subsample of the others ordered by
    their ratio y/x (so the extremes of the ratio stay). Deterministic."""
    must = [p for p in points if keep(p)]
    rest = [p for p in points if not keep(p)]
    room = max(limit - len(must), 2)
    if len(rest) > room:
        rest.sort(key=lambda p: (p[1] / p[0]) if p[0] else math.inf)
        step = (len(rest) - 1) / (room - 1)
        rest = [rest[round(i * step)] for i in range(room)]
    return must + rest


def to_svg(fig, label: str) -> str:
    """Serialise ``fig`` to an inline SVG tagged with ``data-plot=label`` (the browser test looks for these)."""
    plt = _plt()
    buf = io.StringIO()
    with plt.rc_context(_RC):  # svg.fonttype is read when saving: text stays text
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = strip_svg(buf.getvalue())
    # shared styles: the page's CSS gives plot text its font (one rule instead of a font list per label)
    svg = re.sub(r"font-family: [^;\"]+;? ?", "", svg)
    svg = re.sub(r' transform="rotate\(-?0 [\d.]+ [\d.]+\)"', "", svg)
    return svg.replace("<svg ", f'<svg class="plot" data-plot="{label}" role="img" ', 1)


def bound_scatter(lower: list[float], upper: list[float], name: str, kind: str) -> str:
    """Empirical side (x) vs the bound's value (y) over all cases, the line y = x, violations in red; claims are
    labelled as measured vs claimed side."""
    plt = _plt()
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(3.6, 3.2))
        pts = [(lo, up) for lo, up in zip(lower, upper) if math.isfinite(lo) and math.isfinite(up)]
        shown = decimate(pts, keep=lambda p: p[0] > p[1])
        ok = [(lo, up) for lo, up in shown if lo <= up]
        bad = [(lo, up) for lo, up in shown if lo > up]
        log = bool(pts) and all(lo > 0 and up > 0 for lo, up in pts)
        if ok:
            ax.plot(*zip(*ok), ls="none", marker="o", ms=3, alpha=0.6, color="#1f77b4", mew=0, label="empirical <= bound")
        if bad:
            ax.plot(*zip(*bad), ls="none", marker="x", ms=4, color="#d62728", label="empirical > bound (violation)")
        if pts:
            lo_all = min(min(p) for p in pts)
            hi_all = max(max(p) for p in pts)
            ax.plot([lo_all, hi_all], [lo_all, hi_all], color="k", lw=0.8, ls="--", label="y = x")
        if log:
            _log_axis(ax, "x")
            _log_axis(ax, "y")
        ax.set_xlabel({"exact": "ground truth", "claim": "measured side"}.get(kind, "empirical lower bound"))
        ax.set_ylabel({"exact": "computed value", "claim": "claimed side"}.get(kind, "bound (theory)"))
        ax.set_title(name if len(shown) == len(pts) else f"{name} ({len(shown)} of {len(pts)} cases shown)")
        ax.legend(fontsize=6, loc="upper left")
    return to_svg(fig, f"scatter:{name}")


def bounds_overview(rows: list[dict]) -> str:
    """The first figure of the report: per bound, the worst (filled) and median (open) witness ratio on a log axis,
    coloured by confidence; ratio > 1 where the bound is expected to hold is a violation (red); falsified findings
    and planted bounds are marked by their label. ``rows``: dicts with name, worst, median, confidence, expect,
    falsified, met."""
    plt = _plt()
    rows = [r for r in rows if r.get("worst") is not None and math.isfinite(r["worst"]) and r["worst"] > 0]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.6, 0.6 + 0.17 * max(len(rows), 3)))
        ys = list(range(len(rows)))[::-1]
        clip = lambda v: min(max(v, OVERVIEW_RANGE[0]), OVERVIEW_RANGE[1])  # noqa: E731
        for y, r in zip(ys, rows):
            colour = CONFIDENCE_COLOURS.get(r.get("confidence"), "#555555")
            violation = r.get("expect") == "holds" and r["worst"] > 1.0
            worst = clip(r["worst"])  # ratios beyond the range (a planted bound at 1e299) sit at its edge as ">"
            marker = ">" if r["worst"] > OVERVIEW_RANGE[1] else "<" if r["worst"] < OVERVIEW_RANGE[0] else "o"
            ax.plot([worst], [y], marker=marker, ms=4.5, color="#d62728" if violation else colour, ls="none")
            med = r.get("median")
            if med is not None and math.isfinite(med) and med > 0:
                med = clip(med)
                ax.plot([med], [y], marker="o", ms=4.5, mfc="none", color=colour, ls="none")
                ax.plot([min(med, worst), max(med, worst)], [y, y], color=colour, lw=0.7, alpha=0.6)
        ax.set_yticks(ys)
        labels = []
        for r in rows:
            tag = (" [planted]" if r.get("confidence") == "planted" else
                   " [falsified finding]" if r.get("expect") == "falsified" else "")
            labels.append(r["name"] + tag + ("" if r.get("met", True) else "  UNEXPECTED"))
        ax.set_yticklabels(labels, fontsize=6)
        for tick, r in zip(ax.get_yticklabels(), rows):
            if not r.get("met", True) or (r.get("expect") == "holds" and r["worst"] > 1.0):
                tick.set_color("#d62728")
        ax.axvline(1.0, color="#d62728", lw=0.8, ls="--")
        if rows:
            _log_axis(ax, "x")
            xs = [clip(r["worst"]) for r in rows] + [1.0]
            ax.set_xlim(min(xs) / 2.0, max(xs) * 2.0)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel("witness ratio = empirical / bound (filled: worst case, open: median; 1 = tight, > 1 = "
                      "violated)")
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", ls="none", color=c, label=k) for k, c in CONFIDENCE_COLOURS.items()]
        handles.append(Line2D([], [], marker="o", ls="none", color="#d62728", label="violation"))
        ax.legend(handles=handles, fontsize=6, loc="lower left", ncol=5, bbox_to_anchor=(0, 1.0), frameon=False)
        fig.tight_layout()
    return to_svg(fig, "overview:bounds")


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
                    alpha=0.8, histtype="stepfilled")  # one path, not one rectangle per bin
        ax.axvline(1.0, color="#d62728", lw=1, ls="--", label="ratio = 1")
        ax.grid(False)  # a histogram reads without grid lines (each one is an SVG element)
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
                ax.plot(xs, ys, marker="o" if len(epochs) <= 2 else None, ms=2.5, lw=1, color=color,
                        label=f"epoch {ep}")  # markers only for a few lines: every marker is an SVG element
            ax.set_title(metric)
            ax.grid(False)  # small multiples: the lines carry the information, grid lines only bytes
            ax.set_xlabel("layer")
            if len(epochs) <= 6:
                ax.legend(fontsize=5, loc="best")
            elif epochs:  # many epochs: the colour scale, first and last named, in the panel itself
                ax.text(0.02, 0.96, f"colour: epoch {epochs[0]} (dark) .. {epochs[-1]} (light)", fontsize=5,
                        transform=ax.transAxes, va="top")
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.suptitle(title)
        fig.tight_layout()
    return to_svg(fig, label)


def training_curves(loss: list[tuple[float, float]], accuracy: list[tuple[float, float]], title: str,
                    label: str) -> str:
    """Loss and accuracy per epoch on two axes side by side (their scales have nothing in common)."""
    plt = _plt()
    with plt.rc_context(_RC):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(5.6, 2.4))
        for ax, pts, name, colour in ((a1, loss, "train loss", "#1f77b4"), (a2, accuracy, "clean accuracy", "#2ca02c")):
            if pts:
                xs, ys = zip(*sorted(pts))
                ax.plot(xs, ys, marker="o", ms=2.5, lw=1, color=colour, label=name)
                ax.legend(fontsize=6)
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
        if accuracy:
            a2.set_ylim(0, 1.02)
        fig.suptitle(title)
        fig.tight_layout()
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
