"""The worker: a QObject living in a QThread that loops over a method's event generator.

It owns no widgets.  A *job* is a callable ``job(should_stop) -> Iterator[Event]``; the worker
re-emits the events as signals.  ``request_stop()`` asks the method to end early and still
deliver its result; ``shutdown()`` (window closing) abandons the run and joins the thread.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ...core.events import Event, Result, Status, Step

Job = Callable[[Callable[[], bool]], Iterator[Event]]


class Worker(QObject):
    step = Signal(object)          # list[Step]: consecutive steps, coalesced up to the next preview
    status = Signal(str)
    finished = Signal(object)      # Result
    failed = Signal(str, str)      # message, detail (traceback)
    idle = Signal()                # emitted after every job, whatever happened

    def __init__(self):
        super().__init__()
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._resume = threading.Event()
        self._resume.set()                  # cleared = paused

    def pause(self, on: bool) -> None:
        """Hold the run at the next event the method yields (every preview for optimisation)."""
        (self._resume.clear if on else self._resume.set)()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def request_stop(self) -> None:
        self._stop.set()
        self._resume.set()

    def abort(self) -> None:
        self._stop.set()
        self._abort.set()
        self._resume.set()

    @Slot(object)
    def run(self, job: Job) -> None:
        self._stop.clear()
        self._resume.set()
        gen = None
        try:
            if self._abort.is_set():
                return
            gen = job(self._stop.is_set)
            # Steps are sent in batches (a method yields a burst of them at each preview), so the GUI
            # thread wakes once per burst instead of once per iteration: less contention for the GIL.
            batch: list[Step] = []
            for ev in gen:
                while not self._resume.wait(0.1):           # paused: wait here, between two events
                    pass
                if self._abort.is_set():
                    break
                if isinstance(ev, Step):
                    batch.append(ev)
                    if ev.preview is not None or ev.i == ev.total:
                        self.step.emit(batch)
                        batch = []
                    continue
                if batch:
                    self.step.emit(batch)
                    batch = []
                if isinstance(ev, Result):
                    self.finished.emit(ev)
                elif isinstance(ev, Status):
                    self.status.emit(ev.message)
            if batch and not self._abort.is_set():
                self.step.emit(batch)
        except Exception as e:  # every worker error becomes a dialog, never a crash
            self.failed.emit(str(e) or type(e).__name__, traceback.format_exc())
        finally:
            if gen is not None and hasattr(gen, "close"):
                gen.close()        # runs the method's finally blocks, frees its tensors
            self.idle.emit()


class WorkerThread(QObject):
    """Owns the QThread and the Worker; ``submit`` queues a job onto the thread."""

    _submit = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.qthread = QThread()
        self.qthread.setObjectName("invgui-worker")
        self.worker = Worker()
        self.worker.moveToThread(self.qthread)
        self._submit.connect(self.worker.run)
        # Delete the worker in its own thread when that thread ends (not later, from the GUI thread).
        self.qthread.finished.connect(self.worker.deleteLater)
        self.busy = False
        self.worker.idle.connect(self._on_idle)
        self.qthread.start()

    def _on_idle(self) -> None:
        self.busy = False

    def submit(self, job: Job) -> None:
        if self.busy:
            raise RuntimeError("a run is already in progress")
        self.busy = True
        self._submit.emit(job)

    def request_stop(self) -> None:
        self.worker.request_stop()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Abandon any run and join the thread; True when the thread has ended."""
        if not self.qthread.isRunning():
            return True
        self.worker.abort()
        self.qthread.quit()
        return self.qthread.wait(timeout_ms)


def error_dialog(parent, log: list[str], title: str, text: str, detail: str = "") -> None:
    """A readable, non-blocking warning; the traceback (``detail``) goes under 'Show Details…'.
    The message is also appended to ``log`` (tests and the record of what went wrong read it)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    log.append(f"{title}: {text}")
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    if detail:
        box.setDetailedText(detail)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
