"""The error hierarchy of boundlab: bad input, a failed solve, a failed check.

Every error boundlab raises on purpose derives from :class:`BoundlabError` and says what went wrong in one line that
names the argument or file. The command line maps each class to its exit status in one place
(:data:`BoundlabError.exit_status`): bad input exits 2, a failed solve or a failed check exits 1.

* :class:`InputError` (also a ``ValueError``): an argument violates the assumptions of a function or a bound
  (shape, finiteness, sign, domain), a file is missing or malformed, an option is out of range.
* :class:`SolveError` (also a ``RuntimeError``): a numerical solver failed or returned no usable answer, so no
  number is reported (an SDP that is infeasible, a convex program that did not converge).
* :class:`CheckError` (also an ``AssertionError``): a certificate or an expectation was checked and did not hold
  (a re-checked LMI, a verification run whose bounds did not meet their expectation).
"""

from __future__ import annotations

__all__ = ["BoundlabError", "InputError", "SolveError", "CheckError"]


class BoundlabError(Exception):
    """Base class of the errors boundlab raises on purpose; ``exit_status`` is the CLI's exit code for it."""

    exit_status = 1


class InputError(BoundlabError, ValueError):
    """Bad input: the message names the argument (or file) and states what was expected."""

    exit_status = 2


class SolveError(BoundlabError, RuntimeError):
    """A solver failed or gave no usable answer: no number is reported."""

    exit_status = 1


class CheckError(BoundlabError, AssertionError):
    """A certificate or an expectation was checked and failed."""

    exit_status = 1
