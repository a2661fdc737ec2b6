"""Work the GUI thread must not wait for — Φ0 and the feature picture of a new layer or image,
receptive fields, the layer tree's shapes, weight-file hashes — done one job at a time off the
GUI thread (each a ``jobs.Job``), the answer delivered on the GUI thread.

Each job has a *kind* ("fmap", "rf", …): when the user moves on before a job of that kind
has finished, only the latest request's answer is delivered; the older one is dropped (and,
if it has not started, never computed).  One at a time: these jobs are short, and two at once
would only compete with the worker for the machine's cores.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject

from .jobs import Job, create_worker


class Background(QObject):
    """Jobs by kind, one at a time (each a ``jobs.Job``); ``submit`` and the answers live on the
    GUI thread."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pending: OrderedDict[str, tuple[int, Callable[[], Any]]] = OrderedDict()
        self._latest: dict[str, int] = {}
        self._callbacks: dict[tuple[str, int], Callable[[Any, BaseException | None], None]] = {}
        self._ticket = 0
        self._busy = 0                                 # jobs submitted whose answer has not been delivered
        self._current: Job | None = None               # the job computing
        self._closed = False

    def submit(self, kind: str, fn: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
        """Compute ``fn()`` off the GUI thread; ``done(value, error)`` runs on the GUI thread
        unless a newer job of the same ``kind`` was submitted meanwhile."""
        self._ticket += 1
        t = self._ticket
        if kind in self._pending:                       # superseded before it started: never computed
            old, _ = self._pending.pop(kind)
            self._callbacks.pop((kind, old), None)
            self._busy -= 1
        self._pending[kind] = (t, fn)
        self._latest[kind] = t
        self._callbacks[(kind, t)] = done
        self._busy += 1
        self._next()

    def idle(self) -> bool:
        """Nothing queued, computing or waiting to be delivered (tests wait for this)."""
        return self._busy == 0

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
        if self._current is not None:
            self._current.wait(5)

    def _next(self) -> None:
        if self._current is not None and not self._current.wait(0):
            return                                      # one at a time: the next starts when it ends
        self._current = None
        if self._closed or not self._pending:
            return
        kind, (ticket, fn) = self._pending.popitem(last=False)
        self._current = create_worker(fn, _name="invgui-background", _connect={
            "returned": lambda value: self._deliver(kind, ticket, value, None),
            "errored": lambda error: self._deliver(kind, ticket, None, error),
            "finished": self._next})

    def _deliver(self, kind: str, ticket: int, value, error) -> None:
        self._busy -= 1
        done = self._callbacks.pop((kind, ticket), None)
        if done is not None and self._latest.get(kind) == ticket:
            done(value, error)
