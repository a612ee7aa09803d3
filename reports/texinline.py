"""Plain-text math of the records' assumptions (``W^{V,h}``, ``||W_QK||_1``, ``sqrt(d)``, ``<=``) as HTML text.

The assumptions are short ASCII statements written for the terminal; in the report they are shown with real
sub/superscripts, norm bars and symbols, as selectable text (no images, no script). Only unambiguous notation is
converted: ``_``/``^`` after a single letter, a digit, a closing bracket or a norm bar, or before a brace group
(``head_dim`` and other identifiers stay as they are), ``||`` bars, comparison arrows, ``sqrt``, ``inf`` and Greek
letter names as whole words. Everything is HTML-escaped first.
"""

from __future__ import annotations

import html
import re

__all__ = ["tex_inline_html"]

_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "eps": "ε", "epsilon": "ε", "lambda": "λ",
          "mu": "μ", "sigma": "σ", "rho": "ρ", "tau": "τ", "theta": "θ", "kappa": "κ", "omega": "ω", "pi": "π",
          "Lambda": "Λ", "Sigma": "Σ", "Delta": "Δ"}
_SYMBOLS = [("&lt;=", "≤"), ("&gt;=", "≥"), ("!=", "≠"), ("-&gt;", "→"), ("&lt;-&gt;", "↔"), ("||", "‖"),
            ("+-", "±"), (" x ", " × ")]
# a script base: one letter not preceded by a letter/digit, a digit run, a closing bracket or a norm bar
_BASE = r"(?:(?<![A-Za-z0-9])[A-Za-z]|[0-9]+|[)\]}‖|])"


def _group(text: str, start: int) -> tuple[str, int] | None:
    """The brace group starting at ``text[start] == '{'``: (content, index after the closing brace)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    return None


def _scripts(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch in "_^" and out:
            tag = "sub" if ch == "_" else "sup"
            prev = "".join(out)
            based = re.search(_BASE + r"$", prev) is not None
            if i + 1 < len(text) and text[i + 1] == "{":
                grp = _group(text, i + 1)
                if grp is not None:
                    out.append(f"<{tag}>{_scripts(grp[0])}</{tag}>")
                    i = grp[1]
                    continue
            if based and i + 1 < len(text):
                m = re.match(r"-?[A-Za-z0-9]+|[∞*]", text[i + 1:])
                if m:
                    out.append(f"<{tag}>{m.group(0)}</{tag}>")
                    i += 1 + m.end()
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def tex_inline_html(text: str) -> str:
    """HTML for one plain-text statement (escaped, then the notation above converted)."""
    s = html.escape(str(text), quote=False)
    s = re.sub(r"\\([A-Za-z]+)", lambda m: _GREEK.get(m.group(1), m.group(0)), s)  # \beta -> β
    for a, b in _SYMBOLS:
        s = s.replace(a, b)
    s = re.sub(r"\bsqrt\s*\(", "√(", s)
    s = re.sub(r"\binf\b", "∞", s)
    s = re.sub(r"\b(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")\b",
               lambda m: _GREEK[m.group(1)], s)
    return _scripts(s)
