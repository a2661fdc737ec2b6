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
    """Draws on the result view, the run list and the status bar what the controller's signals
    say; reads and writes the shown run and result in the window's ``state``.  The window's own
    reactions come in as callables: ``ended`` (a run's outcome shown), ``update_buttons``,
    ``compare`` (the comparison view, or None), ``size`` (the input side), ``show_error``."""

    def __init__(self, controller, state, *, view, run_list, live, background, status_bar, progress, metrics,
                 show_error, compare, ended, update_buttons, size):
        self.c, self.state, self.view, self.run_list, self.live = controller, state, view, run_list, live
        self.background = background
        self.status_bar, self.progress, self.metrics = status_bar, progress, metrics
        self.show_error, self.compare, self.ended = show_error, compare, ended
        self.update_buttons, self.size = update_buttons, size
        c = controller
        for signal, slot in ((c.runChanged, self.run_changed), (c.runRemoved, run_list.remove),
                             (c.runStarted, self.run_started), (c.steps, self.steps),
                             (c.status, lambda m: status_bar.showMessage(m, 15000)),
                             (c.runFinished, self.finished), (c.runFailed, self.failed),
                             (c.cannotStart, self.cannot_start), (c.probeFinished, self.probe_finished),
                             (c.idle, update_buttons), (c.sessionReplaced, self.session_replaced),
                             (c.batchFailed, self.batch_failed),
                             (c.autosaveFailed, lambda m: status_bar.showMessage(f"autosave failed: {m}", 8000))):
            signal.connect(slot)
        self.timer = QTimer(view, interval=DRAW_INTERVAL_MS, timeout=self.redraw)
        self.timer.start()

    def run_changed(self, run: Run) -> None:
        if not self.run_list.has(run.id):
            if any(r is run for r in self.c.session.runs):
                self.run_list.add(run)
        else:
            self.run_list.update_run(run)
        if run.state == "queued":
            self.update_buttons()                  # the Run button counts what waits

    # One rule: the panes, their titles, the curves and the result panel show one run — the one
    # selected in the run list, which is the live one while the user follows it (the default; a
    # click on another run stops following, a click on the running one follows again).  The live
    # preview and curves are drawn only while the live run is the one shown.
    follow_live = True

    def following(self) -> bool:
        st = self.state
        return self.c.active is not None and st.shown_run is self.c.active

    def run_started(self, run: Run) -> None:
        st = self.state
        self.live.start(method(run.method).terms)
        if not self.follow_live and st.shown_run is not None:
            self.update_buttons()                    # the user looks at another run: it stays shown
            return
        st.shown_run = run
        self.run_list.select(run.id)
        self._show_live(run)

    def _show_live(self, run: Run) -> None:
        st = self.state
        st.result = None
        self.view.clear_result()
        self.view.plot.clear_curves()
        if method(run.method).optimises:
            p = run.request.optimize_params()
            self.view.plot.set_span(p.iters + p.stage2_iters)
        self.metrics.setText("")
        self.view.recon_pane.set_title(f"Reconstruction — {where(run.model, run.layer)} (running)")
        self.live.dirty = True                         # what it has computed so far, at the next redraw
        self.show_original()
        self.update_buttons()

    def steps(self, steps: list[Step]) -> None:
        if self.live.last is None:
            self.status_bar.clearMessage()          # "preparing …" is over once iterations arrive
        self.live.add(steps)

    def redraw(self) -> None:
        live = self.live
        if not live.dirty or not self.following():
            return
        live.dirty = False
        if live.preview is not None:
            self.view.recon_pane.set_image(live.preview)
        self.view.plot.set_history(live.history)
        if live.last is not None and not self.c.is_paused:
            self.progress.setText(live.progress())

    def finished(self, run: Run | None, res: Result) -> None:
        st = self.state
        self.hash_behind(res)
        compare = self.compare()
        if compare is not None and run is not None:
            compare.run_finished(run)
        if run is not None and (run is not self.c.active or st.shown_run is not run):
            # Another run of the batch the selected one ran in, or a run the user does not look at:
            # its line in the list says it is done; the panes keep the run they show.
            self.live.last = None
            self.ended()
            return
        self.live.last = None                        # no stale "iteration n/N · s left" after the end
        st.shown_run = run
        self.status_bar.clearMessage()
        self.show_result(res)
        if res.message and "diverged" in res.message:
            self.show_error("The run diverged", res.message)
        elif res.message:
            self.status_bar.showMessage(res.message, 8000)
        self.ended()

    def show_result(self, res: Result | None, run: Run | None = None) -> None:
        """Show a result in the panes, the curves and the result panel (None: clear them)."""
        st = self.state
        st.result = res
        if res is None:
            self.view.clear_result()
            text = f"<b>{run.label()}</b><br>{run.state}" + (f": {run.message}" if run.message else "") if run else ""
            self.metrics.setText(text)
        else:
            self.live.preview = self.view.show_result(res)
            self.live.history = {k: list(v) for k, v in res.history.items()}
            self.metrics.setText(summary(res, "html"))
            self.progress.setText(progress_text(res))
            spec = METHODS.get(str(res.record.get("method")))
            state = spec.word if spec is not None and spec.one_pass else "stopped" if res.stopped else "done"
            rec = res.record
            self.view.recon_pane.set_title(f"Reconstruction — {where(rec['representation'], rec['layer'])} ({state})")
        self.show_original()
        self.update_buttons()

    def hash_behind(self, res: Result) -> None:
        """Every export records the SHA-256 of the weight (and decoder) file: computed now on the
        background thread (and cached), not by the GUI thread at the first export — a 233 MB AlexNet
        file takes a second."""
        from ..core.export import file_sha256, hashed_files

        for path in hashed_files(res.record):
            self.background.submit(f"hash:{path}", functools.partial(file_sha256, path), lambda *_: None)

    def probe_finished(self, res: Result) -> None:
        st = self.state
        st.probe_result = res
        self.view.show_probe(res)
        self.status_bar.showMessage(f"probe {res.record['probe']} done in {res.metrics['seconds'] * 1000:.0f} ms",
                                    8000)
        self.ended()

    def failed(self, run: Run | None, message: str, detail: str) -> None:
        self.live.last = None
        self.progress.setText("failed")
        self.status_bar.clearMessage()
        if not self.c.in_batch(run):        # a sweep's failures are told once, together
            self.show_error("The run failed", message, detail)
        self.ended()

    def cannot_start(self, run: Run, message: str) -> None:
        self.show_error("The run cannot start", f"{run.label()}: {message}")

    def batch_failed(self, what: str, total: int, failed: list) -> None:
        n = len(failed)
        self.show_error(f"{n} of {total} runs of the {what} failed",
                        "\n".join(failed[:12]) + (f"\n… and {n - 12} more" if n > 12 else ""))

    def session_replaced(self) -> None:
        self.run_list.show_runs(self.c.session.runs)
        last = next((r for r in reversed(self.c.session.runs) if r.result is not None), None)
        if last is not None:
            self.run_list.select(last.id)
            self.show_run(last)

    def show_run(self, run: Run) -> None:
        """Show a run of the list: its images, curves, metrics and parameters (the running one:
        its live preview and curves, followed from now on)."""
        st = self.state
        self.follow_live = run is self.c.active
        if run is self.c.active and run.result is None:
            if st.shown_run is not run:
                st.shown_run = run
                self._show_live(run)
            return
        st.shown_run = run
        self.show_result(run.result, run)
        if run.result is None:
            self.view.recon_pane.set_title(f"Reconstruction — {where(run.model, run.layer)} ({run.state})")

    def clear_stale(self) -> None:
        """Take down what belongs to other settings: a reconstruction, difference or probe strip of
        another representation, layer or image is not left up as if it were this one's."""
        st = self.state
        if st.probe_result is not None:
            rec = st.probe_result.record
            if (rec.get("representation"), rec.get("layer")) != (st.rep.name, st.layer):
                st.probe_result = None
                self.view.hide_probe()
        if st.result is None and st.shown_run is None and not self.c.running():
            # Nothing shown: the pane is titled after what the next run would invert.  (A run that
            # is shown, live or queued, keeps its own title: the panes show one run.)
            self.view.recon_pane.set_title(f"Reconstruction — {where(st.rep.name, st.layer)}")
        if st.result is None or self.c.running():
            return
        rec = st.result.record
        image = st.shown_run.image if st.shown_run is not None else st.image_source
        if (rec.get("representation"), rec.get("layer"), image) != (st.rep.name, st.layer, st.image_source):
            st.shown_run = None
            self.run_list.clearSelection()                 # the list no longer says a run is shown
            self.run_list.setCurrentItem(None)
            self.show_result(None)
            self.view.recon_pane.set_title(f"Reconstruction — {where(st.rep.name, st.layer)}")
            self.progress.setText("idle")

    def probe_started(self, title: str) -> None:
        self.view.probe_pane.set_title(title)
        self.view.probe_pane.show()
        self.update_buttons()

    def show_original(self) -> None:
        """The Original pane shows what the shown result was computed from: a run of another image
        (an images sweep, a restored session) or framing shows its own preprocessed original."""
        st = self.state
        run, res = st.shown_run, st.result
        if res is not None and res.target is not None and run is not None and (
                run.image != st.image_source or run.framing != st.framing):
            self.view.original_pane.set_image(res.target)
            how = {"fit": "padded to a square", "crop": "its centre square"}[run.framing]
            self.view.original_pane.set_title(f"Original — {run.image}, {how} (this run's; the window has "
                                              f"{st.image_source}, {st.framing})")
        elif st.image is not None:
            self.view.original_pane.set_image(resize_center_crop(frame(st.image, st.framing), self.size()))
            name = Path(st.image_source).name if not st.image_source.startswith("sample:") else st.image_source
            self.view.original_pane.set_title(f"Original — {name} ({st.image.shape[1]}×{st.image.shape[0]}"
                                              f"{region_words(st.image.shape, st.framing)})")
