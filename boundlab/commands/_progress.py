"""The command line's side of the progress protocol (:mod:`boundlab.io.progress`): the displays.

Library code reports :class:`~boundlab.io.progress.Event` objects; only a command opens a display, with
:func:`console_reporter`: live rich bars when stderr is a terminal, plain timestamped log lines otherwise.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator, TextIO

from ..io.progress import Event, Reporter

__all__ = ["LineReporter", "console_reporter"]


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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(file=stream), transient=True) as bar:
        yield _RichReporter(bar)
