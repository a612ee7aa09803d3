"""The one solve-and-certify step of every convex program in :mod:`theory` (LipSDP, convex attention, the attention SDP).

A cvxpy solver works in finite precision with its own tolerances, so what it returns is a *proposal*, never a
result. :func:`solve_and_certify` runs the problem, checks the solver's status and that every variable received a
value (otherwise it raises the caller's :class:`~boundlab.io.errors.SolveError` subclass naming the solver, or
uses the caller's fallback proposal), then hands the proposed values to the caller's ``certify`` function, which
re-assembles the problem in float64 numpy from them and returns the certified number (an LMI re-checked by an
eigenvalue or a Cholesky factorisation, a duality gap, a multiplier re-evaluated). The helper records the solver's
objective beside the certified value and their relative gap, so a result always says how far the solver's own
number was from what could be proved. This is the spirit of cvxpy's ``tests/solver_test_helpers.py``
(``SolverTestHelper`` verifies primal and dual feasibility of a solution instead of trusting the status).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..io.errors import SolveError

__all__ = ["Certified", "solve_and_certify", "OK_STATUSES"]

#: solver statuses whose proposal is worth certifying (the certificate decides whether it is usable)
OK_STATUSES = ("optimal", "optimal_inaccurate")


@dataclass(frozen=True)
class Certified:
    """A certified solve. Only ``value`` is a result; ``solver_value`` is the solver's objective (a proposal)."""

    value: float
    solver_value: float
    gap: float
    status: str
    solver: str
    seconds: float
    checks: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"value": self.value, "solver_value": self.solver_value, "gap": self.gap, "status": self.status,
                "solver": self.solver, "seconds": self.seconds,
                **{k: v for k, v in self.checks.items() if isinstance(v, (int, float, str, bool, type(None)))}}


def solve_and_certify(problem, variables: dict[str, Any], certify: Callable[[dict[str, np.ndarray]], tuple[float, dict]],
                      *, solver: str, options: dict | None = None, error: type[SolveError] = SolveError,
                      fallback: Callable[[], dict[str, np.ndarray]] | None = None) -> Certified:
    """Solve the cvxpy ``problem`` with ``solver``, then certify the proposed ``variables`` in float64.

    ``certify(values) -> (certified value, checks)`` receives ``{name: float64 array}`` for every variable and must
    not trust anything the solver said. A solver exception, a status outside :data:`OK_STATUSES` or a variable
    without a value raise ``error`` (naming the solver and the status), unless ``fallback()`` supplies a proposal
    (for programs whose certificate is valid for *any* proposal, e.g. a multiplier re-evaluated in float64).
    """
    import cvxpy as cp

    start = time.perf_counter()
    status, failure = "not solved", None
    try:
        with warnings.catch_warnings():  # "solution may be inaccurate": the certificate decides
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=solver, **(options or {}))
        status = str(problem.status)
        if status not in OK_STATUSES:
            failure = f"solver: {solver} returned status {status!r}; no bound"
        elif any(v.value is None for v in variables.values()):
            failure = f"solver: {solver} returned status {status!r} but left variables without values; no bound"
    except cp.error.SolverError as exc:
        failure = f"solver: {solver} failed: {exc}"
    seconds = time.perf_counter() - start
    if failure is not None:
        if fallback is None:
            raise error(failure)
        values, status = fallback(), f"{status} (fallback proposal)"
        solver_value = math.nan
    else:
        values = {k: np.asarray(v.value, dtype=np.float64) for k, v in variables.items()}
        solver_value = float(problem.value) if problem.value is not None else math.nan
    value, checks = certify(values)
    gap = abs(value - solver_value) / max(abs(value), 1e-300) if math.isfinite(solver_value) else math.nan
    return Certified(float(value), solver_value, gap, status, solver, seconds, dict(checks))
