"""What the controller says, shown in the window: the run list's lines, the live preview and
curves of the run computing (redrawn at most every DRAW_INTERVAL_MS), a finished run's result in
the panes and the result panel, probes, failures (a sweep's together) and a replaced session."""

from __future__ import annotations

import functools

from PySide6.QtCore import QObject, QTimer, Signal

from ...core.events import Result, Step
from ...core.images import frame, region_words, resize_center_crop, source_label
from ...core.methods.registry import method
from ...core.results import ended, summary, where
from ...core.results import progress as progress_text
from ...core.session import Run
from ...core.state import subscribe

# The live preview and the curves are redrawn at most ~10 times a second each, on alternate ticks:
# a top-level window paints all its dirty widgets in one go, and the two together were the longest
# stalls of the event loop while runs computed (~15 ms each alone on the 2-core VM, 30–60 ms
# together once the worker competes for the cores; bench_gui --session, issue 38).
DRAW_INTERVAL_MS = 50


class RunDisplay(QObject):
    """The run display: the panes, their titles, the curves, the result panel and the run list's
    lines.  What the controller's signals say goes into the window's state (the shown run, its
    result, the probe's); the panes are drawn from the state, subscribed to in the constructor —
    so a change of layer, image or framing made anywhere redraws them, and a result of other
    settings is taken down (``WindowState.stale``).  ``ended``: a run's outcome was shown."""

    ended = Signal()

    def __init__(self, ctx, view, run_list, live, metrics):
        super().__init__(view)
        self.ctx, self.c, self.state = ctx, ctx.controller, ctx.state
        self.view, self.run_list, self.live, self.metrics = view, run_list, live, metrics
        c, st = self.c, self.state
        for signal, slot in ((c.runChanged, self.run_changed), (c.runRemoved, run_list.remove),
                             (c.runStarted, self.run_started), (c.steps, self.steps),
                             (c.status, lambda m: ctx.say(m, 15000)),
                             (c.runFinished, self.finished), (c.runFailed, self.failed),
                             (c.cannotStart, self.cannot_start), (c.probeFinished, self.probe_finished),
                             (c.sessionReplaced, self.session_replaced),
                             (c.batchFailed, self.batch_failed),
                             (c.autosaveFailed, lambda m: ctx.say(f"autosave failed: {m}"))):
            signal.connect(slot)
        st.events.result.connect(self._draw_result)
        st.events.probe_result.connect(lambda res: view.hide_probe() if res is None else view.show_probe(res))
        subscribe(st, ("image", "image_source", "framing", "size", "shown_run", "result"), self.show_original)
        subscribe(st, ("rep", "layer", "image_source", "framing"), self.clear_stale)
        self._original_key: tuple | None = None
        self._window_original: tuple[tuple | None, object] = (None, None)
        self._curves_turn = False
        self.timer = QTimer(view, interval=DRAW_INTERVAL_MS, timeout=self.redraw)
        self.timer.start()

    def run_changed(self, run: Run) -> None:
        if not self.run_list.has(run.id):
            if any(r is run for r in self.c.session.runs):
                self.run_list.add(run)
        else:
            self.run_list.update_run(run)

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
            return                                   # the user looks at another run: it stays shown
        st.shown_run = run
        self.run_list.select(run.id)
        self._show_live(run)

    def _show_live(self, run: Run) -> None:
        st = self.state
        st.set(shown_run=run, result=None)
        self.view.clear_result(_span(run), live=True)
        self.metrics.setText("")
        self.view.recon_pane.set_title(f"Reconstruction — {where(run.model, run.layer)} (running)")
        self.live.dirty = True                         # what it has computed so far, at the next redraw

    def steps(self, steps: list[Step]) -> None:
        if self.live.last is None:
            self.ctx.hush()                         # "preparing …" is over once iterations arrive
        self.live.add(steps)

    def redraw(self) -> None:
        """One of the two, in turn: the preview (with the progress line), or the curves."""
        live = self.live
        if not live.dirty or not self.following():
            return
        self._curves_turn = not self._curves_turn
        if live.new_curves and (self._curves_turn or not live.new_preview):
            live.new_curves = False
            self.view.plot.set_history(live.history)
            return
        live.new_preview = False
        if live.preview is not None:
            self.view.recon_pane.set_image(live.preview)
        if live.last is not None and not self.c.is_paused:
            self.ctx.progress(live.progress())

    def finished(self, run: Run | None, res: Result) -> None:
        st = self.state
        self.hash_behind(res)
        if run is not None and (run is not self.c.active or st.shown_run is not run):
            # Another run of the batch the selected one ran in, or a run the user does not look at:
            # its line in the list says it is done; the panes keep the run they show.
            self.live.last = None
            self.ended.emit()
            return
        self.live.last = None                        # no stale "iteration n/N · s left" after the end
        self.ctx.hush()
        self.show_result(res, run)
        if res.message and "diverged" in res.message:
            self.ctx.show_error("The run diverged", res.message)
        elif res.message:
            self.ctx.say(res.message)
        self.ended.emit()

    def show_result(self, res: Result | None, run: Run | None = None) -> None:
        """Show ``run`` and its result (None: clear the panes; ``run`` then says its state)."""
        self.state.set(shown_run=run, result=res)
        if res is None:
            self._draw_result(None)            # the run's state in the panel, even when nothing changed

    def _draw_result(self, res: Result | None) -> None:
        """The panes, curves and result panel, from the state's result."""
        if res is None:
            run = self.state.shown_run
            # The run going live keeps the plot's axes up for its curves (see LossPlot.set_span).
            live = run is not None and run is self.c.active
            self.view.clear_result(_span(run) if live else 0, live=live)
            text = f"<b>{run.label()}</b><br>{run.state}" + (f": {run.message}" if run.message else "") if run else ""
            self.metrics.setText(text)
            return
        self.live.preview = self.view.show_result(res)
        self.live.history = {k: list(v) for k, v in res.history.items()}
        self.metrics.setText(summary(res, "html"))
        self.ctx.progress(progress_text(res))
        rec = res.record
        self.view.recon_pane.set_title(f"Reconstruction — {where(rec['representation'], rec['layer'])} "
                                       f"({ended(res)})")

    def hash_behind(self, res: Result) -> None:
        """Every export records the SHA-256 of the weight (and decoder) file: computed now on the
        background thread (and cached), not by the GUI thread at the first export — a 233 MB AlexNet
        file takes a second."""
        from ...core.export import file_sha256, hashed_files

        for path in hashed_files(res.record):
            self.ctx.background.submit(f"hash:{path}", functools.partial(file_sha256, path), lambda *_: None)

    def probe_finished(self, res: Result) -> None:
        self.state.probe_result = res                 # the probe pane draws it
        self.ctx.say(f"probe {res.record['probe']} done in {res.metrics['seconds'] * 1000:.0f} ms")
        self.ended.emit()

    def failed(self, run: Run | None, message: str, detail: str) -> None:
        self.live.last = None
        self.ctx.progress("failed")
        self.ctx.hush()
        if not self.c.in_batch(run):        # a sweep's failures are told once, together
            self.ctx.show_error("The run failed", message, detail)
        self.ended.emit()

    def cannot_start(self, run: Run, message: str) -> None:
        self.ctx.show_error("The run cannot start", f"{run.label()}: {message}")

    def batch_failed(self, what: str, total: int, failed: list) -> None:
        n = len(failed)
        self.ctx.show_error(f"{n} of {total} runs of the {what} failed",
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
                self._show_live(run)
            return
        self.show_result(run.result, run)
        if run.result is None:
            self.view.recon_pane.set_title(f"Reconstruction — {where(run.model, run.layer)} ({run.state})")

    def clear_stale(self) -> None:
        """Take down what belongs to other settings (``WindowState.stale``): a reconstruction,
        difference or probe strip of another representation, layer or image is not left up as if
        it were this one's."""
        st = self.state
        if st.rep is None:
            return
        result_stale, probe_stale = st.stale()
        if probe_stale:
            st.probe_result = None
        if st.result is None and st.shown_run is None and not self.c.running():
            # Nothing shown: the pane is titled after what the next run would invert.  (A run that
            # is shown, live or queued, keeps its own title: the panes show one run.)
            self.view.recon_pane.set_title(f"Reconstruction — {where(st.rep.name, st.layer)}")
        if not result_stale:
            return
        self.run_list.clearSelection()                 # the list no longer says a run is shown
        self.run_list.setCurrentItem(None)
        self.show_result(None)
        self.view.recon_pane.set_title(f"Reconstruction — {where(st.rep.name, st.layer)}")
        self.ctx.progress("idle")

    def probe_started(self, title: str) -> None:
        self.view.probe_pane.set_title(title)
        self.view.probe_pane.show()

    def show_original(self) -> None:
        """The Original pane shows what the shown result was computed from: a run of another image
        (an images sweep, a restored session) or framing shows its own preprocessed original."""
        st = self.state
        run, res = st.shown_run, st.result
        own = res is not None and res.target is not None and run is not None and (
            run.image != st.image_source or run.framing != st.framing)
        # Drawn only when what it shows changed: a run's start and end set the shown run and its
        # result (two events), and each redraw resized the photo again (~10 ms of the GUI thread
        # per run in bench_gui --session).
        key = (id(res.target), run.image, run.framing) if own else (id(st.image), st.framing, st.input_side)
        if key == self._original_key:
            return
        self._original_key = key
        if own:
            self.view.original_pane.set_image(res.target)
            how = {"fit": "padded to a square", "crop": "its centre square"}[run.framing]
            self.view.original_pane.set_title(f"Original — {run.image}, {how} (this run's; the window has "
                                              f"{st.image_source}, {st.framing})")
        elif st.image is not None:
            # The window's own original, resized once per image, framing and side: runs of other
            # images in a queue alternate between it and their own (a resize of the photo on the GUI
            # thread at every run start, 10–25 ms in bench_gui --session).
            # (The image itself is held and compared by identity: an id could be reused.)
            held, shown = self._window_original
            if held is None or held[0] is not st.image or held[1:] != (st.framing, st.input_side):
                shown = resize_center_crop(frame(st.image, st.framing), st.input_side)
                self._window_original = ((st.image, st.framing, st.input_side), shown)
            self.view.original_pane.set_image(shown)
            name = source_label(st.image_source)
            self.view.original_pane.set_title(f"Original — {name} ({st.image.shape[1]}×{st.image.shape[0]}"
                                              f"{region_words(st.image.shape, st.framing)})")


def _span(run: Run) -> int:
    """The iterations a run's curves will span (0: it has no curves)."""
    if not method(run.method).terms:
        return 0
    p = run.request.optimize_params()
    return p.iters + p.stage2_iters
