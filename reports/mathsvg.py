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
    newlines inside path data) to one space, ids that nothing in the SVG refers to removed. Text content is short labels; squeezing its spaces changes nothing."""
    svg = svg[svg.index("<svg"):] if "<svg" in svg else svg
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)  # matplotlib's comments (the LaTeX of every label)
    svg = re.sub(r"(?<![#\w])(-?\d+\.\d\d)\d+", r"\1", svg)
    svg = re.sub(r">\s+<", "><", svg)
    svg = re.sub(r"\s+", " ", svg)
    # ids nothing refers to (matplotlib names every group: figure_1, line2d_7, xtick_3, ...) are dropped;
    # referenced ones (clip paths, marker definitions) stay, so inlined figures keep their distinct ids
    used = set(re.findall(r"#([\w-]+)", svg))
    svg = re.sub(r' id="([\w-]+)"', lambda m: m.group(0) if m.group(1) in used else "", svg)
    return re.sub(r"(<g(?: [^>]*)?)>((?:<use [^>]*/>)+)</g>", _hoist_style, svg)


def _hoist_style(m: re.Match) -> str:
    """A group of ``<use>`` elements (a scatter's markers) that all carry the same style: the style once, on the
    group (inherited; the markers' own definitions carry no fill or stroke of their own that it would override)."""
    styles = set(re.findall(r'<use [^>]*?style="([^"]*)"', m.group(2)))
    if len(styles) != 1 or m.group(2).count("<use") != m.group(2).count("style=") or "style=" in m.group(1):
        return m.group(0)
    style = styles.pop()
    if re.search(r"(^|;)\s*opacity:", style):  # opacity is not inherited: on the group it would act differently
        return m.group(0)
    return f'{m.group(1)} style="{style}">' + m.group(2).replace(f' style="{style}"', "") + "</g>"


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


_DEF_PATH = re.compile(r'<path id="([\w-]+)" [^>]*?/>')
_DEFS = re.compile(r"<defs>(.*?)</defs>", re.S)


def share_definitions(html: str) -> tuple[str, str]:
    """Move every ``<path id=...>`` definition inside an SVG's ``<defs>`` (mathtext glyph outlines, matplotlib
    marker shapes: their ids are derived from the glyph or the marker, so equal ids are equal paths) out of the
    inlined figures into one shared sprite sheet, each id once. Returns ``(html without them, sprite sheet)``;
    the sheet goes at the top of the page's body, where every ``<use href="#id">`` finds it (also from figures
    inside collapsed cards). The formulas' glyphs were half of the report's size."""
    shared: dict[str, str] = {}

    def strip(defs: re.Match) -> str:
        inner = defs.group(1)
        for m in _DEF_PATH.finditer(inner):
            shared.setdefault(m.group(1), m.group(0))
        rest = _DEF_PATH.sub("", inner)
        return f"<defs>{rest}</defs>" if rest.strip() else ""

    html = _DEFS.sub(strip, html)
    if not shared:
        return html, ""
    # one page-wide name per shared definition: short ("u12" for "DejaVuSans-Oblique-29"), the same everywhere
    short = {old: f"u{i}" for i, old in enumerate(shared)}
    ref = re.compile(r'#([\w-]+)"')
    html = ref.sub(lambda m: f'#{short.get(m.group(1), m.group(1))}"', html)
    defs = "".join(d.replace(f'id="{old}"', f'id="{short[old]}"', 1) for old, d in shared.items())
    sheet = ('<svg class="sprites" aria-hidden="true" width="0" height="0" style="position:absolute;width:0;'
             f'height:0;overflow:hidden" xmlns="http://www.w3.org/2000/svg"><defs>{defs}</defs></svg>')
    return html, sheet


_TAG_STYLE = re.compile(r'<([a-z]+)((?: [^>]*?)?) style="([^"]*)"([^>]*)>')


def share_styles(html: str, min_count: int = 20) -> tuple[str, str]:
    """Replace each inline ``style`` that repeats at least ``min_count`` times on the page (matplotlib writes the
    same grid, tick and label styles on every element) by a class with one CSS rule. Elements that already have a
    class keep their inline style. The rules are only those declarations, so the rendering is the same.
    Returns ``(html, css)``; the CSS goes into the page's ``<style>``."""
    counts: dict[str, int] = {}
    for m in _TAG_STYLE.finditer(html):
        if "class=" not in m.group(2) + m.group(4):
            counts[m.group(3)] = counts.get(m.group(3), 0) + 1
    names = {st: f"s{i}" for i, st in enumerate(sorted(st for st, n in counts.items() if n >= min_count))}

    def sub(m: re.Match) -> str:
        name = names.get(m.group(3))
        if name is None or "class=" in m.group(2) + m.group(4):
            return m.group(0)
        return f'<{m.group(1)}{m.group(2)} class="{name}"{m.group(4)}>'

    css = "".join(f".{n}{{{st}}}" for st, n in names.items())
    return _TAG_STYLE.sub(sub, html), css
