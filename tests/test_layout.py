"""The installed layout: namespaced packages, every package listed, and the layer contracts (import-linter).

The folders stay at the repository's top level (``theory/``, ``empirical/``, ...) and install as ``boundlab.theory``,
``boundlab.empirical``, ... (setuptools ``package-dir``). import-linter (grimp) reads a package's files from one
directory, so the contracts of ``pyproject.toml`` are checked on the layout as installed: the package tree is
assembled in a temporary folder from the ``package-dir`` mapping, and ``lint-imports`` runs there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source(package: str) -> Path:
    """The folder of ``package`` under the package-dir mapping (the longest mapped prefix wins)."""
    mapping = SETUP["package-dir"]
    prefix = max((p for p in mapping if package == p or package.startswith(p + ".")), key=len)
    return ROOT / mapping[prefix] / Path(*package[len(prefix):].strip(".").split(".")) if package != prefix \
        else ROOT / mapping[prefix]


def test_every_package_folder_is_listed_and_nothing_installs_top_level():
    listed = set(SETUP["packages"])
    assert all(p == "boundlab" or p.startswith("boundlab.") for p in listed)  # nothing shadows another `reports`
    found = set()
    for top, folder in SETUP["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "corpus" in rel.parts or "__pycache__" in rel.parts:
                continue
            found.add(".".join([top, *rel.parts]) if rel.parts else top)
    assert found == listed, (sorted(found - listed), sorted(listed - found))


def test_no_module_imports_the_top_level_folders():
    # inside the checkout `import theory` would work (the cwd is on sys.path) but install nowhere
    bad = []
    for top, folder in SETUP["package-dir"].items():
        for py in (ROOT / folder).rglob("*.py"):
            for no, line in enumerate(py.read_text().splitlines(), 1):
                s = line.strip()
                if s.startswith(("from theory", "from empirical", "from reports", "from verification",
                                 "import theory", "import empirical", "import reports", "import verification")):
                    bad.append(f"{py.relative_to(ROOT)}:{no}: {s}")
    assert not bad, bad


def test_layer_contracts_hold(tmp_path):
    pytest.importorskip("importlinter", reason="import-linter is a test dependency: pip install -e '.[test]'")
    site = tmp_path / "site"
    for package in SETUP["packages"]:
        src, dst = _source(package), site / Path(*package.split("."))
        dst.mkdir(parents=True, exist_ok=True)
        for py in src.glob("*.py"):
            shutil.copy2(py, dst / py.name)
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(site)}
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), str(tmp_path / "pyproject.toml"), "--no-cache"], cwd=site,
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 4 kept, 0 broken" in out.stdout, out.stdout
