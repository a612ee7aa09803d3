"""The progress protocol: one meaning of ``progress`` in every library function.

Library code never opens a display. A long-running function takes ``progress``: ``None`` (silent) or a
:data:`Reporter`, a callable that receives :class:`Event` objects, and reports through :func:`emit`::

    def fit(..., progress: Reporter | None = None):
        for e in range(epochs):
            emit(progress, "epoch", e, epochs, f"epoch {e + 1}/{epochs}")

``done``/``total`` count steps of the task named ``label`` (``total=None``: unknown); ``message`` is a line worth
logging. The command line creates the reporter (:func:`boundlab.commands._progress.console_reporter`): live bars
on a terminal, plain, throttled log lines otherwise (a CI log, a file), so a long run never prints only dots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Event", "Reporter", "emit"]


@dataclass(frozen=True)
class Event:
    """One progress report: ``done`` of ``total`` steps of ``label`` (``total=None`` if unknown), and a message."""

    label: str
    done: int = 0
    total: int | None = None
    message: str = ""


Reporter = Callable[[Event], None]
"""What ``progress`` means everywhere: a callable taking an :class:`Event` (``None`` means silent)."""


def emit(progress: Reporter | None, label: str, done: int = 0, total: int | None = None, message: str = "") -> None:
    """Send one :class:`Event` to ``progress`` (no-op for ``None``)."""
    if progress is not None:
        progress(Event(label, int(done), None if total is None else int(total), message))
