"""Executors: run idempotent units of work in process, on a local Dask cluster, or on an existing Dask scheduler.

A :class:`Unit` is one piece of a sweep (one model x seed of an experiment, one seed of a falsification campaign):
a module-level function, its keyword arguments, and the path of the JSON result file it produces. The contract
that makes sweeps resumable and safe to run anywhere:

* **idempotent**: running a unit twice gives the same result file (every random draw is seeded from the config);
* **atomic, exactly-once commit**: the result is written to a temporary file and published with
  :func:`commit_result`, which uses ``link(2)`` so that the *first* finisher creates the file and any later finisher
  (a task re-run after its worker was killed at the wrong moment) sees that it exists and does not overwrite it;
* **finished means finished**: only a file published by :func:`commit_result` with ``"status": "finished"`` counts;
  half-written temporaries are ignored, so a killed worker loses only its own unit;
* **resume**: :meth:`Executor.run` skips units whose result file is already finished and returns the stored result.

Results land in the same files, in the same format, whichever executor ran them. ``InProcess`` is the default;
``DaskExecutor(workers=N)`` starts a ``LocalCluster`` of N worker processes on loopback; ``DaskExecutor(scheduler=
"tcp://HOST:PORT")`` uses an existing cluster (its workers must have boundlab installed and see the output folder
at the same path, e.g. a shared filesystem).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .errors import InputError
from .progress import Reporter, emit
from .results import ResultFileError, atomic_file, config_hash, dumps, read_json

__all__ = ["Unit", "unit_key", "commit_result", "read_finished", "Executor", "InProcess", "DaskExecutor",
           "make_executor"]


def unit_key(prefix: str, config: dict) -> str:
    """``prefix-<hash8>``: the first 8 hex digits of :func:`boundlab.io.results.config_hash` of ``config``."""
    return f"{prefix}-{config_hash(config)[:8]}"


def commit_result(path: str | os.PathLike, doc: dict) -> bool:
    """Publish ``doc`` (with ``status: finished``) at ``path`` exactly once; returns False if it already existed.

    Written through :func:`boundlab.io.results.atomic_file` with ``exclusive=True``: the document is fsync-ed to a
    temporary file and hard-linked to ``path``, and ``link`` fails if ``path`` exists, so concurrent or repeated
    finishers cannot overwrite a published result.
    """
    text = dumps({**doc, "status": "finished"})
    try:
        with atomic_file(path, "w", exclusive=True) as fh:
            fh.write(text)
    except FileExistsError:
        return False
    return True


def read_finished(path: str | os.PathLike) -> dict | None:
    """The result at ``path`` if it is a finished result file, else ``None`` (missing, partial or unreadable)."""
    try:
        doc = read_json(path)
    except ResultFileError:
        return None
    return doc if isinstance(doc, dict) and doc.get("status") == "finished" else None


@dataclass(frozen=True)
class Unit:
    """One unit of work: ``fn(**kwargs)`` must write ``result_path`` through :func:`commit_result` and return a
    small JSON-able summary. ``fn`` must be importable by name (a module-level function) for Dask to ship it."""

    key: str
    fn: Callable[..., Any]
    kwargs: dict = field(default_factory=dict)
    result_path: str = ""
    accepts_progress: bool = False  # fn takes a ``progress`` reporter (passed by the in-process executor only)


class Executor:
    """Runs units; subclasses implement :meth:`_run_pending`. Finished units are skipped (resume)."""

    name = "executor"

    def run(self, units: Iterable[Unit], *, progress: Reporter | None = None) -> dict[str, Any]:
        """Run every unit whose result file is not finished; returns ``{key: summary}`` in the order given
        (``{"skipped": True, ...}`` for finished units). ``progress``: see :mod:`boundlab.io.progress`."""
        units = list(units)
        keys = [u.key for u in units]
        if len(set(keys)) != len(keys):
            raise InputError("units: keys must be unique (each is a hash of its config)")
        done: dict[str, Any] = {}
        pending = []
        for u in units:
            stored = read_finished(u.result_path) if u.result_path else None
            if stored is not None:
                done[u.key] = {"skipped": True, "result_path": u.result_path}
            else:
                pending.append(u)
        if done:
            emit(progress, "units", 0, len(pending),
                 f"resume: {len(done)} finished unit(s) skipped ({', '.join(sorted(done))})")
        done.update(self._run_pending(pending, progress))
        return {k: done[k] for k in keys}

    def _run_pending(self, units: list[Unit], progress) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (a local cluster)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcess(Executor):
    """Runs the units one after another in this process (the default)."""

    name = "in-process"

    def _run_pending(self, units, progress):
        out = {}
        for i, u in enumerate(units):
            emit(progress, "units (in process)", i, len(units), f"unit {u.key}: started")
            out[u.key] = u.fn(**u.kwargs, **({"progress": progress} if u.accepts_progress else {}))
        if units:
            emit(progress, "units (in process)", len(units), len(units))
        return out


class DaskExecutor(Executor):
    """Runs the units on Dask distributed: an existing scheduler (``scheduler="tcp://HOST:PORT"``) or a
    ``LocalCluster`` of ``workers`` single-threaded worker processes on loopback. Tasks whose worker dies are
    rescheduled by Dask (``retries`` more times for errors raised by the unit itself)."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, retries: int = 1):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise InputError("scheduler: dask distributed is not installed: pip install 'dask[distributed]'") from exc
        if (scheduler is None) == (workers is None):
            raise InputError("scheduler: give either a scheduler address or a number of local workers")
        self.retries = retries
        self._cluster = None
        if scheduler is not None:
            if not str(scheduler).startswith(("tcp://", "tls://", "inproc://")):
                raise InputError(f"scheduler: expected an address like tcp://HOST:PORT, got {scheduler!r}")
            self.client = Client(scheduler, timeout="30s")
        else:
            if int(workers) < 1:
                raise InputError(f"workers: expected an integer >= 1, got {workers}")
            self._cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address=None)
            self.client = Client(self._cluster)
        self.address = self.client.scheduler.address

    def _run_pending(self, units, progress):
        from distributed import as_completed

        if not units:
            return {}
        futures = {self.client.submit(u.fn, **u.kwargs, key=f"boundlab-{u.key}", pure=False, retries=self.retries): u
                   for u in units}
        out = {}
        label = f"units (dask {self.address})"
        emit(progress, label, 0, len(units), f"{len(units)} unit(s) submitted to {self.address}")
        for fut in as_completed(futures):
            out[futures[fut].key] = fut.result()
            emit(progress, label, len(out), len(units), f"unit {futures[fut].key}: finished")
        return out

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(scheduler: str | None = None, workers: int | None = None) -> Executor:
    """``InProcess()`` unless a scheduler address or a number of local workers is given."""
    if scheduler is None and workers is None:
        return InProcess()
    return DaskExecutor(scheduler=scheduler, workers=workers)
