"""The progress protocol: one meaning of ``progress`` in every library function.

Library code never opens a display. A long-running function takes ``progress``: ``None`` (silent) or a
:data:`Reporter`, a callable that receives :class:`Event` objects, and reports through :func:`emit`::

    def fit(..., progress: Reporter | None = None):
        for e in range(epochs):
            emit(progress, "epoch", e, epochs, f"epoch {e + 1}/{epochs}")

``done``/``total`` count steps of the task named ``label`` (``total=None``: unknown); ``message`` is a line worth
logging. The command line creates the reporter with :func:`console_reporter`: live bars on a terminal, plain,
throttled log lines otherwise (a CI log, a file), so a long run never prints only dots.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, TextIO

__all__ = ["Event", "Reporter", "emit", "console_reporter", "LineReporter"]


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


class LineReporter:
    """Plain log lines (no control characters): every message, and a task's count at most every ``interval``
    seconds and when it finishes. For logs and pipes, where a live bar would be noise."""

    def __init__(self, stream: TextIO | None = None, interval: float = 10.0):
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        now = time.monotonic()
        line = None
        if event.message:
            line = event.message
        elif event.total is not None and event.done >= event.total:
            line = f"{event.label}: {event.done}/{event.total} done"
        elif now - self._last.get(event.label, -1e9) >= self.interval:
            line = f"{event.label}: {event.done}/{event.total if event.total is not None else '?'}"
        if line is not None:
            self._last[event.label] = now
            print(f"[{time.strftime('%H:%M:%S')}] {line}", file=self.stream, flush=True)


class _RichReporter:
    """Live rich bars, one per label, on a terminal; messages are printed above the bars."""

    def __init__(self, bar):
        self.bar = bar
        self.tasks: dict[str, int] = {}

    def __call__(self, event: Event) -> None:
        if event.message:
            self.bar.console.print(event.message)
        if event.total is None and not event.done:
            return
        task = self.tasks.get(event.label)
        if task is None:
            task = self.tasks[event.label] = self.bar.add_task(event.label, total=event.total)
        self.bar.update(task, completed=event.done, total=event.total)
        if event.total is not None and event.done >= event.total:
            self.bar.remove_task(task)
            del self.tasks[event.label]


@contextlib.contextmanager
def console_reporter(enabled: bool = True, stream: TextIO | None = None) -> Iterator[Reporter | None]:
    """The command line's reporter: rich bars when ``stream`` (default stderr) is a terminal, else
    :class:`LineReporter`; ``enabled=False`` yields ``None``."""
    if not enabled:
        yield None
        return
    stream = stream or sys.stderr
    if not stream.isatty():
        yield LineReporter(stream)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(file=stream), transient=True) as bar:
        yield _RichReporter(bar)
