"""The counterexample corpus: every counterexample found (real or planted) as ``.npz`` + ``.json``.

Files live in ``verification/corpus/<bound>/<digest>.{npz,json}`` (override the folder with the environment
variable ``BOUNDLAB_CORPUS``). :func:`replay` turns every saved case of a bound into an explicit Hypothesis
``@example``, so a counterexample found once is re-checked in every later run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from hypothesis import example

from boundlab.io.results import write_json, write_npz

from .cases import Case


SHIPPED = Path(__file__).resolve().parent / "corpus"


def corpus_dir() -> Path:
    """Where new counterexamples are written: ``$BOUNDLAB_CORPUS`` if set, else the shipped corpus folder."""
    env = os.environ.get("BOUNDLAB_CORPUS")
    return Path(env) if env else SHIPPED


def _read_dirs() -> list[Path]:
    dirs = [SHIPPED]
    if corpus_dir() != SHIPPED:
        dirs.append(corpus_dir())
    return dirs


def save(bound: str, case: Case, info: dict | None = None, root: str | Path | None = None) -> Path:
    """Save ``case`` for ``bound`` under ``root`` (default :func:`corpus_dir`); returns the ``.json`` path
    (idempotent: the name is the case digest)."""
    folder = (Path(root) if root is not None else corpus_dir()) / bound
    digest = case.digest()
    meta = folder / f"{digest}.json"
    if meta.is_file() and (folder / f"{digest}.npz").is_file():  # found before: keep the first record unchanged
        return meta
    write_npz(folder / f"{digest}.npz", **{k: np.asarray(v) for k, v in case.arrays.items()})
    return write_json(folder / f"{digest}.json", {"bound": bound, "config": case.config, "info": info or {}})


def load(bound: str) -> list[Case]:
    """Every saved case of ``bound`` (shipped corpus, then ``$BOUNDLAB_CORPUS``), deduplicated by digest."""
    metas: dict[str, Path] = {}
    for root in _read_dirs():
        folder = root / bound
        if folder.is_dir():
            for meta in sorted(folder.glob("*.json")):
                metas.setdefault(meta.stem, meta)
    cases = []
    for _, meta in sorted(metas.items()):
        npz = meta.with_suffix(".npz")
        if not npz.is_file():
            continue
        cfg = json.loads(meta.read_text())["config"]
        with np.load(npz) as data:
            arrays = {k: data[k] for k in data.files}
        cases.append(Case(cfg, arrays))
    return cases


def replay(bound: str, argname: str = "case"):
    """Decorator adding one ``@example`` per saved counterexample of ``bound`` (apply above ``@given``)."""

    def deco(fn):
        for c in load(bound):
            fn = example(**{argname: c})(fn)
        return fn

    return deco
