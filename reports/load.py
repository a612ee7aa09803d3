"""Tolerant readers of a results folder (the layout of ``docs/results.md``) for the HTML report.

Every reader records what it could not read as a :class:`Problem` naming the file (and line or key) instead of
raising, so one broken file never hides the rest of the report. Nothing here recomputes a result: numbers are
taken from the files as written ("inf"/"nan" strings become floats, nothing else changes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    """A file (or part of one) that could not be read: shown in the report and printed on stderr."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Results:
    """Everything the report shows, as read from one results folder."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    verify: dict | None = None
    bounds: dict[str, dict] = field(default_factory=dict)
    bounds_origin: str = ""
    observations: dict[str, list[dict]] = field(default_factory=dict)
    counterexamples: dict[str, dict] = field(default_factory=dict)
    lipsdp: list[tuple[str, dict]] = field(default_factory=list)
    topolip_runs: list[tuple[str, dict]] = field(default_factory=list)
    verdicts: dict | None = None
    bench: list[tuple[str, dict]] = field(default_factory=list)

    def problem(self, path: Path | str, message: str) -> None:
        self.problems.append(Problem(str(path), message))


class Malformed(ValueError):
    """A result file whose structure does not match docs/results.md (the message names the key)."""


def num(value: Any) -> float | None:
    """A number from a result file: floats/ints as floats, "inf"/"-inf"/"nan" strings decoded, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return None


def read_doc(path: Path) -> dict:
    """A JSON object from ``path``; raises :class:`Malformed` with a message naming what is wrong."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise Malformed(f"cannot read: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(doc, dict):
        raise Malformed(f"expected a JSON object at the top level, got {type(doc).__name__}")
    return doc


def require(doc: dict, key: str, types: type | tuple, where: str = "") -> Any:
    """``doc[key]`` if present and of ``types``; else :class:`Malformed` naming the key."""
    if not isinstance(doc, dict) or key not in doc:
        raise Malformed(f"missing key {where + key!r}")
    if not isinstance(doc[key], types):
        names = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise Malformed(f"key {where + key!r} should be {names}, got {type(doc[key]).__name__}")
    return doc[key]


def _read(res: Results, path: Path, check=None) -> dict | None:
    try:
        doc = read_doc(path)
        if check is not None:
            check(doc)
    except Malformed as exc:
        res.problem(path, str(exc))
        return None
    res.files_read.append(str(path))
    return doc


# ----------------------------------------------------------------------------------------------- verify
_PROPERTY_KEYS = (("bound", str), ("expect", str), ("examples", int), ("falsified", bool))


def _check_verify(doc: dict) -> None:
    props = require(doc, "properties", list)
    for i, p in enumerate(props):
        for key, t in _PROPERTY_KEYS:
            require(p, key, t, f"properties[{i}].")


def read_observations(res: Results, path: Path) -> list[dict]:
    """The ``.jsonl`` lines of one property; a bad line is a problem naming the file and line, the rest is kept."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        res.problem(path, f"cannot read observations: {exc.strerror or exc}")
        return []
    out, bad = [], []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obs = json.loads(line)
            lower, upper = num(obs["lower"]), num(obs["upper"])
            if lower is None or upper is None:
                raise KeyError("lower/upper not numbers")
        except (json.JSONDecodeError, KeyError, TypeError):
            bad.append(no)
            continue
        out.append({**obs, "lower": lower, "upper": upper, "ratio": num(obs.get("ratio"))})
    if bad:
        res.problem(path, f"{len(bad)} malformed line(s) skipped (first: line {bad[0]})")
    res.files_read.append(str(path))
    return out


def _read_counterexample(res: Results, bound: str, where: str) -> None:
    """The corpus ``.json`` (+ array shapes from the ``.npz``) of a falsified bound, when it is readable."""
    path = Path(where)
    if not path.is_absolute():
        path = res.root / path
    doc = _read(res, path)
    if doc is None:
        return
    shapes = {}
    npz = path.with_suffix(".npz")
    if npz.is_file():
        try:
            import numpy as np

            with np.load(npz, allow_pickle=False) as data:
                shapes = {k: list(data[k].shape) for k in data.files}
        except Exception as exc:  # noqa: BLE001 - unreadable arrays are a problem, not a crash
            res.problem(npz, f"cannot read arrays: {exc}")
    res.counterexamples[bound] = {"path": str(path), "config": doc.get("config", {}), "info": doc.get("info", {}),
                                  "shapes": shapes}


def read_verify(res: Results) -> None:
    path = res.root / "verify.json"
    if not path.is_file():
        res.problem(path, "not found (run `boundlab verify` or `boundlab demo` to produce it)")
        return
    res.verify = _read(res, path, _check_verify)
    if res.verify is None:
        return
    for p in res.verify["properties"]:
        rel = p.get("observations")
        if isinstance(rel, str):
            obs_path = res.root / rel
            if obs_path.is_file():
                res.observations[p["bound"]] = read_observations(res, obs_path)
            else:
                res.problem(obs_path, f"observations of {p['bound']} not found")
        if p.get("falsified") and isinstance(p.get("counterexample"), str):
            _read_counterexample(res, p["bound"], p["counterexample"])


# ----------------------------------------------------------------------------------------------- bounds
def read_bounds(res: Results) -> None:
    """Statements of the bounds: ``bounds.json`` if present, else the installed registry (said in the report)."""
    path = res.root / "bounds.json"
    if path.is_file():
        doc = _read(res, path, lambda d: require(d, "bounds", list))
        if doc is not None:
            res.bounds = {b["name"]: b for b in doc["bounds"] if isinstance(b, dict) and "name" in b}
            res.bounds_origin = str(path)
            return
    from boundlab.theory.registry import all_bounds  # theory never imports torch

    res.bounds = {b.name: b.as_dict() for b in all_bounds()}
    res.bounds_origin = "the installed bound registry (no readable bounds.json in the results folder)"


# ----------------------------------------------------------------------------------------------- bound tables
def comparison_rows(doc: dict) -> list[dict]:
    """The rows of one bound-comparison file (``lipsdp/<name>.json``, written by ``boundlab lipsdp --json``,
    ``boundlab lipschitz ... --json`` and the demo: :func:`boundlab.empirical.compare.compare_layer`): a list under
    ``results`` of ``{"name", "kind", "norm", "value", ...}``."""
    rows = require(doc, "results", list)
    for i, r in enumerate(rows):
        for key, t in (("name", str), ("kind", str)):
            require(r, key, t, f"results[{i}].")
        if "value" not in r:
            raise Malformed(f"missing key 'results[{i}].value'")
    return rows


def read_lipsdp(res: Results) -> None:
    folder = res.root / "lipsdp"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = _read(res, path, comparison_rows)
        if doc is not None:
            res.lipsdp.append((path.stem, doc))


# ----------------------------------------------------------------------------------------------- topolip
def _check_run(doc: dict) -> None:
    for key, t in (("model", str), ("epochs", list)):
        require(doc, key, t)
    for i, ep in enumerate(doc["epochs"]):
        require(ep, "epoch", int, f"epochs[{i}].")
        layers = require(ep, "layers", list, f"epochs[{i}].")
        for j, layer in enumerate(layers):
            require(layer, "index", int, f"epochs[{i}].layers[{j}].")


def _check_verdicts(doc: dict) -> None:
    claims = require(doc, "claims", list)
    for i, c in enumerate(claims):
        for key in ("id", "verdict"):
            require(c, key, str, f"claims[{i}].")


def read_topolip(res: Results) -> None:
    folder = res.root / "topolip"
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*/result.json")):
        doc = _read(res, path, _check_run)
        if doc is not None:
            res.topolip_runs.append((path.parent.name, doc))
    vpath = folder / "verdicts.json"
    if vpath.is_file():
        res.verdicts = _read(res, vpath, _check_verdicts)
    elif res.topolip_runs:
        res.problem(vpath, "not found (the experiment writes it after the last unit)")


# ----------------------------------------------------------------------------------------------- bench
def read_bench(res: Results) -> None:
    from .bench import check_saved

    folder = res.root / "bench"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = _read(res, path, check_saved)
        if doc is not None:
            res.bench.append((path.name, doc))


def load_results(results_dir: str | Path) -> Results:
    """Read every result file under ``results_dir``; unreadable files become :attr:`Results.problems`."""
    res = Results(root=Path(results_dir))
    if not res.root.is_dir():
        res.problem(res.root, "results folder not found")
        return res
    for reader in (read_verify, read_bounds, read_lipsdp, read_topolip, read_bench):
        reader(res)
    return res


def finite(values) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]
