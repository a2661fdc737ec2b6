"""What the controller says, shown in the window: the run list's lines, the live preview and
curves of the run computing (redrawn at most every DRAW_INTERVAL_MS), a finished run's result in
the panes and the result panel, probes, failures (a sweep's together) and a replaced session."""

from __future__ import annotations

import functools
from pathlib import Path

from PySide6.QtCore import QTimer

from ..core.events import Result, Step
from ..core.images import frame, region_words, resize_center_crop
from ..core.methods.registry import METHODS, method
from ..core.results import progress as progress_text
from ..core.results import summary, where
from ..core.session import Run

DRAW_INTERVAL_MS = 100          # previews and curves are redrawn at most ~10 times a second


class RunDisplay:
    def __init__(self, window):
        self.w = w = window
        c = w.controller
        for signal, slot in ((c.runChanged, self.run_changed), (c.runRemoved, lambda i: w.run_list.remove(i)),
                             (c.runStarted, self.run_started), (c.steps, self.steps),
                             (c.status, lambda m: w.statusBar().showMessage(m, 15000)),
                             (c.runFinished, self.finished), (c.runFailed, self.failed),
                             (c.cannotStart, self.cannot_start), (c.probeFinished, self.probe_finished),
                             (c.idle, w._update_buttons), (c.sessionReplaced, self.session_replaced),
                             (c.batchFailed, self.batch_failed),
                             (c.autosaveFailed, lambda m: w.statusBar().showMessage(f"autosave failed: {m}", 8000))):
            signal.connect(slot)
        self.timer = QTimer(w, interval=DRAW_INTERVAL_MS, timeout=self.redraw)
        self.timer.start()

    def run_changed(self, run: Run) -> None:
        w = self.w
        if not w.run_list.has(run.id):
            if any(r is run for r in w.session.runs):
                w.run_list.add(run)
        else:
            w.run_list.update_run(run)
        if run.state == "queued":
            w._update_buttons()                  # the Run button counts what waits

    # One rule: the panes, their titles, the curves and the result panel show one run — the one
    # selected in the run list, which is the live one while the user follows it (the default; a
    # click on another run stops following, a click on the running one follows again).  The live
    # preview and curves are drawn only while the live run is the one shown.
    follow_live = True

    def following(self) -> bool:
        w = self.w
        return w.active_run is not None and w.shown_run is w.active_run

    def run_started(self, run: Run) -> None:
        w = self.w
        w.live.start(method(run.method).terms)
        if not self.follow_live and w.shown_run is not None:
            w._update_buttons()                    # the user looks at another run: it stays shown
            return
        w.shown_run = run
        w.run_list.select(run.id)
        self._show_live(run)

    def _show_live(self, run: Run) -> None:
        w = self.w
        w.result = None
        w.view.clear_result()
        w.plot.clear_curves()
        if method(run.method).optimises:
            p = run.request.optimize_params()
            w.plot.set_span(p.iters + p.stage2_iters)
        w.metrics_label.setText("")
        w.recon_pane.set_title(f"Reconstruction — {where(run.model, run.layer)} (running)")
        w.live.dirty = True                         # what it has computed so far, at the next redraw
        self.show_original()
        w._update_buttons()

    def steps(self, steps: list[Step]) -> None:
        w = self.w
        if w.live.last is None:
            w.statusBar().clearMessage()          # "preparing …" is over once iterations arrive
        w.live.add(steps)

    def redraw(self) -> None:
        w = self.w
        live = w.live
        if not live.dirty or not self.following():
            return
        live.dirty = False
        if live.preview is not None:
            w.recon_pane.set_image(live.preview)
        w.plot.set_history(live.history)
        if live.last is not None and not w.controller.is_paused:
            w.progress.setText(live.progress())

    def finished(self, run: Run | None, res: Result) -> None:
        w = self.w
        self.hash_behind(res)
        if w.compare_view is not None and run is not None:
            w.compare_view.run_finished(run)
        if run is not None and (run is not w.active_run or w.shown_run is not run):
            # Another run of the batch the selected one ran in, or a run the user does not look at:
            # its line in the list says it is done; the panes keep the run they show.
            w.live.last = None
            w.runEnded.emit()
            return
        w.live.last = None                        # no stale "iteration n/N · s left" after the end
        w.shown_run = run
        w.statusBar().clearMessage()
        self.show_result(res)
        if res.message and "diverged" in res.message:
            w.show_error("The run diverged", res.message)
        elif res.message:
            w.statusBar().showMessage(res.message, 8000)
        w.runEnded.emit()

    def show_result(self, res: Result | None, run: Run | None = None) -> None:
        """Show a result in the panes, the curves and the result panel (None: clear them)."""
        w = self.w
        w.result = res
        if res is None:
            w.view.clear_result()
            text = f"<b>{run.label()}</b><br>{run.state}" + (f": {run.message}" if run.message else "") if run else ""
            w.metrics_label.setText(text)
        else:
            w.live.preview = w.view.show_result(res)
            w.live.history = {k: list(v) for k, v in res.history.items()}
            w.metrics_label.setText(summary(res, "html"))
            w.progress.setText(progress_text(res))
            spec = METHODS.get(str(res.record.get("method")))
            state = spec.word if spec is not None and spec.one_pass else "stopped" if res.stopped else "done"
            w.recon_pane.set_title(f"Reconstruction — {where(res.record['representation'], res.record['layer'])} "
                                   f"({state})")
        self.show_original()
        w._update_buttons()

    def hash_behind(self, res: Result) -> None:
        """Every export records the SHA-256 of the weight (and decoder) file: computed now on the
        background thread (and cached), not by the GUI thread at the first export — a 233 MB AlexNet
        file takes a second."""
        from ..core.export import file_sha256, hashed_files

        for path in hashed_files(res.record):
            self.w.background.submit(f"hash:{path}", functools.partial(file_sha256, path), lambda *_: None)

    def probe_finished(self, res: Result) -> None:
        w = self.w
        w.probe_result = res
        w.view.show_probe(res)
        w.statusBar().showMessage(f"probe {res.record['probe']} done in {res.metrics['seconds'] * 1000:.0f} ms",
                                  8000)
        w.runEnded.emit()

    def failed(self, run: Run | None, message: str, detail: str) -> None:
        w = self.w
        w.live.last = None
        w.progress.setText("failed")
        w.statusBar().clearMessage()
        if not w.controller.in_batch(run):        # a sweep's failures are told once, together
            w.show_error("The run failed", message, detail)
        w.runEnded.emit()

    def cannot_start(self, run: Run, message: str) -> None:
        self.w.show_error("The run cannot start", f"{run.label()}: {message}")

    def batch_failed(self, what: str, total: int, failed: list) -> None:
        w = self.w
        n = len(failed)
        w.show_error(f"{n} of {total} runs of the {what} failed",
                     "\n".join(failed[:12]) + (f"\n… and {n - 12} more" if n > 12 else ""))

    def session_replaced(self) -> None:
        w = self.w
        w.run_list.show_runs(w.session.runs)
        last = next((r for r in reversed(w.session.runs) if r.result is not None), None)
        if last is not None:
            w.run_list.select(last.id)
            self.show_run(last)

    def show_run(self, run: Run) -> None:
        """Show a run of the list: its images, curves, metrics and parameters (the running one:
        its live preview and curves, followed from now on)."""
        w = self.w
        self.follow_live = run is w.active_run
        if run is w.active_run and run.result is None:
            if w.shown_run is not run:
                w.shown_run = run
                self._show_live(run)
            return
        w.shown_run = run
        self.show_result(run.result, run)
        if run.result is None:
            w.recon_pane.set_title(f"Reconstruction — {where(run.model, run.layer)} ({run.state})")

    def clear_stale(self) -> None:
        """Take down what belongs to other settings: a reconstruction, difference or probe strip of
        another representation, layer or image is not left up as if it were this one's."""
        w = self.w
        if w.probe_result is not None:
            rec = w.probe_result.record
            if (rec.get("representation"), rec.get("layer")) != (w.rep.name, w.layer):
                w.probe_result = None
                w.view.hide_probe()
        if w.result is None and w.shown_run is None and not w.running():
            # Nothing shown: the pane is titled after what the next run would invert.  (A run that
            # is shown, live or queued, keeps its own title: the panes show one run.)
            w.recon_pane.set_title(f"Reconstruction — {where(w.rep.name, w.layer)}")
        if w.result is None or w.running():
            return
        rec = w.result.record
        image = w.shown_run.image if w.shown_run is not None else w.image_source
        if (rec.get("representation"), rec.get("layer"), image) != (w.rep.name, w.layer, w.image_source):
            w.shown_run = None
            w.run_list.clearSelection()                 # the list no longer says a run is shown
            w.run_list.setCurrentItem(None)
            self.show_result(None)
            w.recon_pane.set_title(f"Reconstruction — {where(w.rep.name, w.layer)}")
            w.progress.setText("idle")

    def probe_started(self, title: str) -> None:
        w = self.w
        w.probe_pane.set_title(title)
        w.probe_pane.show()
        w._update_buttons()

    def set_framing(self, fit: bool) -> None:
        """File › Fit whole images: non-square images are padded to a square instead of cropped."""
        w = self.w
        w.framing = "fit" if fit else "crop"
        w.fit_action.setChecked(fit)
        w.settings.setValue("framing", w.framing)
        self.show_original()
        w.features.update()

    def show_original(self) -> None:
        """The Original pane shows what the shown result was computed from: a run of another image
        (an images sweep, a restored session) or framing shows its own preprocessed original."""
        w = self.w
        run, res = w.shown_run, w.result
        if res is not None and res.target is not None and run is not None and (
                run.image != w.image_source or run.framing != w.framing):
            w.original_pane.set_image(res.target)
            how = {"fit": "padded to a square", "crop": "its centre square"}[run.framing]
            w.original_pane.set_title(f"Original — {run.image}, {how} (this run's; the window has "
                                      f"{w.image_source}, {w.framing})")
        elif w.image is not None:
            w.original_pane.set_image(resize_center_crop(frame(w.image, w.framing), w._size()))
            name = Path(w.image_source).name if not w.image_source.startswith("sample:") else w.image_source
            w.original_pane.set_title(f"Original — {name} ({w.image.shape[1]}×{w.image.shape[0]}"
                                      f"{region_words(w.image.shape, w.framing)})")
