"""One seed derivation for every random draw: :func:`derive_seed`.

A run has one root seed (recorded in its result file); every generator inside it (a training epoch's batch
order, a unit's model initialisation, an attack's random start, a Hypothesis profile's seed) is seeded with
``derive_seed(root, *labels)``, a hash of the root and the labels naming the draw. Draws with different labels are
independent for practical purposes, the same labels always give the same seed, and no module mixes seeds by
hand (``seed * 7919 + i``), which collides and correlates.
"""

from __future__ import annotations

import hashlib
import json
import numbers

from .errors import InputError

__all__ = ["derive_seed", "commit_seed", "SEED_BITS"]

#: derived seeds lie in [0, 2**SEED_BITS): accepted by numpy, torch, Python's random and Hypothesis alike
SEED_BITS = 32


def derive_seed(root: int, *labels) -> int:
    """A seed in ``[0, 2**32)`` from a root seed and labels (strings, integers, floats or tuples of them).

    ``derive_seed(0, "train", 3)`` seeds epoch 3's batch order of a run with root seed 0. The value is the first
    four bytes of the SHA-256 of the canonical JSON of ``[root, *labels]``, so it does not depend on the platform
    or the Python version.
    """
    if isinstance(root, bool) or not isinstance(root, numbers.Integral):
        raise InputError(f"seed: expected an integer, got {root!r}")
    for lab in labels:
        if not isinstance(lab, (str, numbers.Real, tuple, list)) or isinstance(lab, bool):
            raise InputError(f"labels: expected strings or numbers, got {lab!r}")
    text = json.dumps([int(root), *labels], separators=(",", ":"), sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def commit_seed(commit: str | None) -> int:
    """The seed of the default (ci) verification profile for a commit: ``derive_seed(0, "ci", <commit id>)``
    (the ``+dirty`` suffix dropped; 0 outside git). Reproducible per commit and new ground at each commit; the
    verification plugin and ``boundlab mutate`` use it when no seed is given."""
    if not commit:
        return 0
    return derive_seed(0, "ci", commit.split("+")[0])
