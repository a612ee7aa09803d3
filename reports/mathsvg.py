r"""Offline math: a bound's LaTeX rendered to inline SVG with matplotlib's mathtext (no network, no TeX install).

Why mathtext: it ships with matplotlib (already used for the plots), renders glyphs as SVG paths (no font files
to embed) and needs nothing at view time; MathJax/KaTeX would have to be inlined as large JavaScript bundles.
mathtext understands a subset of LaTeX, so :func:`to_mathtext` first rewrites common constructs it lacks
(``\le``, ``\big(``, ``\tfrac12``, ``\sqrt n``, ``\text``, ``\xrightarrow[a]{}``); when it still cannot parse
the statement, :func:`latex_svg` returns ``None`` and the report shows the raw LaTeX instead (the raw LaTeX is
always shown beside the rendering as well).
"""

from __future__ import annotations

import io
import re

_NARGS = {"frac": 2, "dfrac": 2, "tfrac": 2, "binom": 2, "sqrt": 1}
_SUBS = [
    (r"\\xrightarrow\[([^\]]*)\]\{\}", r"\\overset{\1}{\\rightarrow}"),
    (r"\\(left|right)(?![A-Za-z])", ""),
    (r"\\[bB]ig[glr]?(?![A-Za-z])", ""),
    (r"\\(textstyle|displaystyle)(?![A-Za-z])", ""),
    (r"\\[td]frac(?![A-Za-z])", r"\\frac"),
    (r"\\le(?![A-Za-z])", r"\\leq"),
    (r"\\ge(?![A-Za-z])", r"\\geq"),
    (r"\\ne(?![A-Za-z])", r"\\neq"),
    (r"\\[lr]Vert(?![A-Za-z])", r"\\|"),
    (r"\\text(?![A-Za-z])", r"\\mathrm"),
    (r"\\(mathbb|mathcal|mathrm|mathbf) *([A-Za-z0-9])", r"\\\1{\2}"),
]


def _arg(s: str, i: int) -> tuple[str, int]:
    """The next macro argument at or after ``i`` as ``{...}`` and the index after it."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "{}", i
    if s[i] == "{":
        depth = 0
        for j in range(i, len(s)):
            depth += (s[j] == "{") - (s[j] == "}")
            if depth == 0:
                return s[i:j + 1], j + 1
        return s[i:] + "}", len(s)
    if s[i] == "\\":
        m = re.match(r"\\([A-Za-z]+|.)", s[i:])
        return "{" + m.group(0) + "}", i + m.end()
    return "{" + s[i] + "}", i + 1


def _brace_args(s: str) -> str:
    r"""``\frac12`` -> ``\frac{1}{2}``, ``\sqrt n`` -> ``\sqrt{n}`` (mathtext needs braced arguments)."""
    out, i = [], 0
    while i < len(s):
        m = re.match(r"\\(frac|dfrac|tfrac|binom|sqrt)(?![A-Za-z])", s[i:])
        if not m:
            out.append(s[i])
            i += 1
            continue
        out.append(m.group(0))
        i += m.end()
        if m.group(1) == "sqrt" and i < len(s) and s[i] == "[" and "]" in s[i:]:
            j = s.index("]", i) + 1
            out.append(s[i:j])
            i = j
        for _ in range(_NARGS[m.group(1)]):
            a, i = _arg(s, i)
            out.append("{" + _brace_args(a[1:-1]) + "}")
    return "".join(out)


def to_mathtext(latex: str) -> str:
    """Rewrite ``latex`` into the subset that matplotlib's mathtext parses (best effort)."""
    s = _brace_args(latex)
    for pattern, repl in _SUBS:
        s = re.sub(pattern, repl, s)
    return s


def strip_svg(svg: str) -> str:
    """Drop the XML prolog and the RDF ``<metadata>`` block so the SVG can be inlined in HTML, and compact it:
    coordinates to 0.01 (a hundredth of a point: invisible), runs of whitespace (matplotlib's indentation and the
    newlines inside path data) to one space. Text content is short labels; squeezing its spaces changes nothing."""
    svg = svg[svg.index("<svg"):] if "<svg" in svg else svg
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"(?<![#\w])(-?\d+\.\d\d)\d+", r"\1", svg)
    svg = re.sub(r">\s+<", "><", svg)
    return re.sub(r"\s+", " ", svg)


def latex_svg(latex: str, fontsize: float = 13) -> str | None:
    """Inline ``<svg>`` of ``latex`` rendered by mathtext, or ``None`` when mathtext cannot parse it."""
    if not latex or not latex.strip():
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    buf = io.BytesIO()
    try:
        mathtext.math_to_image(f"${to_mathtext(latex)}$", buf, prop=FontProperties(size=fontsize), format="svg")
    except Exception:  # noqa: BLE001 - any parse failure falls back to the raw LaTeX
        return None
    return strip_svg(buf.getvalue().decode("utf-8"))
