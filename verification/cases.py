"""A generated configuration: named arrays + a JSON-able config, hashable into a corpus file name."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Case:
    """One drawn configuration of a property (weights, inputs, shapes, scales)."""

    config: dict
    arrays: dict = field(default_factory=dict)

    def __getitem__(self, key: str):
        if key in self.arrays:
            return self.arrays[key]
        return self.config[key]

    def digest(self) -> str:
        h = hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode())
        for k in sorted(self.arrays):
            a = np.ascontiguousarray(self.arrays[k], dtype=np.float64)
            h.update(k.encode())
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    def size(self) -> int:
        """A complexity measure for shrinking checks: total number of array entries."""
        return int(sum(np.asarray(a).size for a in self.arrays.values()))

    def summary(self) -> dict:
        """Config plus array shapes and norms (what a ledger line and a report show)."""
        out = dict(self.config)
        for k, a in self.arrays.items():
            a = np.asarray(a)
            out[f"{k}.shape"] = list(a.shape)
            out[f"{k}.fro"] = float(np.linalg.norm(a))
        return out

    def __repr__(self) -> str:  # what Hypothesis prints as the falsifying example
        return f"Case({json.dumps(self.summary(), default=str)})"
