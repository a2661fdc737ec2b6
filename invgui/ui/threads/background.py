"""Work the GUI thread must not wait for — Φ0 and the feature picture of a new layer or image,
receptive fields, the comparison view's eval-set distance, contact sheets — done on one
background thread, the answer delivered on the GUI thread.

Each job has a *kind* ("fmap", "rf", …): when the user moves on before a job of that kind
has finished, only the latest request's answer is delivered; the older one is dropped (and,
if it has not started, never computed).  One thread: these jobs are short, and two at once
would only compete with the worker for the machine's cores.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal


class Background(QObject):
    _done = Signal(str, int, object, object)          # kind, ticket, value, error (from the thread)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pending: OrderedDict[str, tuple[int, Callable[[], Any]]] = OrderedDict()
        self._latest: dict[str, int] = {}
        self._callbacks: dict[tuple[str, int], Callable[[Any, BaseException | None], None]] = {}
        self._ticket = 0
        self._busy = 0                                 # jobs submitted whose answer has not been delivered
        self._cv = threading.Condition()
        self._closed = False
        self._done.connect(self._deliver)
        self._thread = threading.Thread(target=self._loop, name="invgui-background", daemon=True)
        self._thread.start()

    def submit(self, kind: str, fn: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
        """Compute ``fn()`` on the background thread; ``done(value, error)`` runs on the GUI thread
        unless a newer job of the same ``kind`` was submitted meanwhile."""
        with self._cv:
            self._ticket += 1
            t = self._ticket
            if kind in self._pending:                   # superseded before it started: never computed
                old, _ = self._pending.pop(kind)
                self._callbacks.pop((kind, old), None)
                self._busy -= 1
            self._pending[kind] = (t, fn)
            self._latest[kind] = t
            self._callbacks[(kind, t)] = done
            self._busy += 1
            self._cv.notify()

    def idle(self) -> bool:
        """Nothing queued, computing or waiting to be delivered (tests wait for this)."""
        with self._cv:
            return self._busy == 0

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._pending.clear()
            self._cv.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                kind, (ticket, fn) = self._pending.popitem(last=False)
            try:
                value, error = fn(), None
            except BaseException as e:                   # delivered to the caller, which says what failed
                value, error = None, e
            self._done.emit(kind, ticket, value, error)

    def _deliver(self, kind: str, ticket: int, value, error) -> None:
        with self._cv:
            self._busy -= 1
            done = self._callbacks.pop((kind, ticket), None)
            current = self._latest.get(kind) == ticket
        if done is not None and current:
            done(value, error)
