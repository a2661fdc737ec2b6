"""The central view: the image panes in a grid that gives the images the room, and the loss curves.

Two panes are large — the original and the reconstruction, side by side, sharing zoom and pan —
and every other one (difference, restarts, probe strip, the representation's own picture, Φ0)
sits in a row of smaller panes under them, shown only while it has something to show.
Double-clicking a small pane's title swaps it with the large left one (to read HOG glyphs or a
probe strip at full size); panes never stretch into tall black columns because the rows share
the height by what they hold.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from ...core.events import Result, Step
from ...core.export import image_strip
from ...core.results import where
from ..widgets.image_pane import FeatureMapPane, ImagePane, colourise, mosaic
from ..widgets.plots import LossPlot


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


class PaneGrid(QWidget):
    """Large panes on top, small ones below; hidden panes take no room, an empty row none either."""

    def __init__(self, large: list[ImagePane], small: list[ImagePane], parent: QWidget | None = None):
        super().__init__(parent)
        self.top = QSplitter(Qt.Orientation.Horizontal)
        self.bottom = QSplitter(Qt.Orientation.Horizontal)
        for split in (self.top, self.bottom):
            split.setChildrenCollapsible(False)
        self.rows = QSplitter(Qt.Orientation.Vertical)
        self.rows.setChildrenCollapsible(False)
        self.rows.addWidget(self.top)
        self.rows.addWidget(self.bottom)
        self.rows.setStretchFactor(0, 3)
        self.rows.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.rows)
        self._home = (list(large), list(small))
        for p in large:
            self.top.addWidget(p)
        for p in small:
            self.bottom.addWidget(p)
        for p in large + small:
            p.installEventFilter(self)
            p.titleDoubleClicked.connect(lambda p=p: self.promote(p))
        self._relayout = QTimer(self, singleShot=True, interval=0)
        self._relayout.timeout.connect(self.relayout)
        self.relayout()

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() in (QEvent.Type.ShowToParent, QEvent.Type.HideToParent):
            self._relayout.start()
        return False

    def relayout(self) -> None:
        """An empty row of small panes is hidden; each row's panes share its width equally."""
        for split in (self.top, self.bottom):
            panes = [split.widget(i) for i in range(split.count())]
            split.setSizes([1000 if p is not None and not p.isHidden() else 0 for p in panes])
        self.bottom.setVisible(any(p is not None and not p.isHidden()
                                   for p in (self.bottom.widget(i) for i in range(self.bottom.count()))))

    def reset(self) -> None:
        """Every pane back where it started."""
        large, small = self._home
        for i, p in enumerate(large):
            self.top.insertWidget(i, p)
        for i, p in enumerate(small):
            self.bottom.insertWidget(i, p)
        self.relayout()

    def promote(self, pane: ImagePane) -> None:
        """Swap a small pane with the large left one (double-click its title again to swap back)."""
        if self.bottom.indexOf(pane) < 0:
            return
        where, first = self.bottom.indexOf(pane), self.top.widget(0)
        assert first is not None                     # the large row is never empty
        self.top.insertWidget(0, pane)
        self.bottom.insertWidget(where, first)
        self.relayout()


class ResultView(QWidget):
    """Every pane and the loss plot; the window tells it what to show."""

    pixelHovered = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.original_pane = ImagePane("Original", unit=True)
        self.recon_pane = ImagePane("Reconstruction", unit=True)
        self.diff_pane = ImagePane("Difference", unit=True)            # |reconstruction − original|
        self.restarts_pane = ImagePane("Restarts and deviation")
        self.probe_pane = ImagePane("Probe")                            # image strip of a feature-space probe
        self.visual_pane = ImagePane("Features")                        # HOG glyphs, SIFT keypoints, LBP map
        self.feature_pane = FeatureMapPane()
        # Original, reconstruction and difference have the same geometry (each drawn one unit wide):
        # one zoom and pan for all three.
        self.recon_pane.link(self.original_pane)
        self.diff_pane.link(self.original_pane)
        small = [self.diff_pane, self.restarts_pane, self.probe_pane, self.visual_pane, self.feature_pane]
        for p in (self.diff_pane, self.restarts_pane, self.probe_pane, self.visual_pane):
            p.hide()
        self.grid = PaneGrid([self.original_pane, self.recon_pane], small)
        for p in [self.original_pane, self.recon_pane] + small:
            p.pixelHovered.connect(self.pixelHovered)
        self.plot = LossPlot()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(self.plot)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([640, 190])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.splitter)
        self.probe_strip: np.ndarray | None = None

    # -- a run's result --------------------------------------------------------------------------
    def clear_result(self, span: int = 0, live: bool = False) -> None:
        """No result shown; ``span``: a run of that many iterations starts, its curves to come.
        ``live``: a run computes — the difference pane, when it is up, keeps its place, empty until
        the result: hiding it and showing it again re-laid out every pane at each run's start and
        end (the panes jumped, and the GUI thread repainted them all; bench_gui --session)."""
        self.recon_pane.set_image(None)
        self.restarts_pane.hide()
        if live and not self.diff_pane.isHidden():
            self.diff_pane.set_image(None)
            self.diff_pane.set_title("|reconstruction − original| — with the run's result")
        else:
            self.diff_pane.hide()
        self.plot.set_span(span)

    def show_result(self, res: Result) -> np.ndarray:
        """Reconstruction, difference, restarts and curves of ``res``; returns the shown image (uint8)."""
        shown = to_uint8(res.image)
        self.recon_pane.set_image(shown)
        if res.target is not None and res.target.shape == res.image.shape:
            diff = np.abs(np.clip(res.image, 0, 1) - res.target)
            self.diff_pane.set_image(np.clip(diff * 2, 0, 1))
            self.diff_pane.set_title(f"|reconstruction − original| ×2 (mean {diff.mean():.3f})")
            self.diff_pane.show()
        else:
            self.diff_pane.hide()
        self.plot.show_history(res.history)
        start = [to_uint8(res.start)] if res.start is not None and res.start.shape == res.image.shape else []
        first = "the decoder's reconstruction it started from, then " if start else ""
        if len(res.images) > 1 and res.deviation is not None:
            tiles = start + [to_uint8(im) for im in res.images] + [colourise(res.deviation, "inferno")]
            self.restarts_pane.set_image(mosaic(tiles))
            self.restarts_pane.set_title(f"{first}{len(res.images)} restarts + per-pixel deviation (max "
                                         f"{res.deviation.max():.3f}; bright = varies across restarts)")
            self.restarts_pane.show()
        elif start:                                  # hybrid, one restart: decoder stage | optimised
            self.restarts_pane.set_image(mosaic(start + [shown]))
            self.restarts_pane.set_title("Hybrid: the decoder's reconstruction (left) and the optimisation "
                                         "that started from it (right)")
            self.restarts_pane.show()
        else:
            self.restarts_pane.hide()
        return shown

    # -- probes, the representation's own picture, Φ0 ----------------------------------------------
    def show_probe(self, res: Result) -> None:
        rec = res.record
        per_row = len(rec["labels"]) // rec["rows"]
        lines = rec["rows"] * (2 if per_row > 4 else 1)          # long strips wrap to fit the pane
        self.probe_strip = image_strip(list(res.images), rec["labels"], rows=lines)
        self.probe_pane.set_image(self.probe_strip)
        self.probe_pane.set_title(f"Probe — {rec['probe']} on {where(rec['representation'], rec['layer'])} "
                                  f"({len(rec['labels'])} reconstructions)")
        self.probe_pane.show()
        # A strip of several reconstructions is unreadable in a small pane: it takes the large
        # left place (double-click its title, or View › Reset the pane layout, to swap back).
        self.grid.promote(self.probe_pane)

    def hide_probe(self) -> None:
        self.probe_strip = None
        self.probe_pane.hide()

    def show_visual(self, picture: np.ndarray | None, title: str) -> None:
        """The representation's picture of Φ0 (None: it has none, or it failed: ``title`` says)."""
        if picture is not None:
            self.visual_pane.set_image(picture)
        self.visual_pane.set_title(title)
        self.visual_pane.setVisible(picture is not None)


class LiveRun:
    """What the window keeps of the run computing: its curves so far, the latest preview, the last
    step, and the iteration rate for the status bar's "n/N · it/s · s left"."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.preview: np.ndarray | None = None
        self.last: Step | None = None
        self.new_preview = self.new_curves = False   # not drawn yet
        self._rate = (0, 0.0)                       # (iteration, time) at the last rate update

    def start(self, terms: tuple[str, ...] = ()) -> None:
        self.history = {k: [] for k in terms}
        self.preview = self.last = None
        self._rate = (0, time.perf_counter())

    def add(self, steps: list[Step]) -> None:
        for ev in steps:
            for k, v in ev.losses.items():
                self.history.setdefault(k, []).append(v)
            if ev.preview is not None:
                self.preview = ev.preview
        self.last = steps[-1]
        self.new_curves = True
        self.new_preview = self.new_preview or any(ev.preview is not None for ev in steps)

    @property
    def dirty(self) -> bool:
        return self.new_preview or self.new_curves

    @dirty.setter
    def dirty(self, on: bool) -> None:
        self.new_preview = self.new_curves = on

    def progress(self) -> str:
        """``iteration n/N · r it/s · t s left · loss L`` ("" before the first step)."""
        ev = self.last
        if ev is None:
            return ""
        now, (i0, t0) = time.perf_counter(), self._rate
        rate = (ev.i - i0) / (now - t0) if now > t0 and ev.i > i0 else 0.0
        if now - t0 > 1.0:
            self._rate = (ev.i, now)
        eta = (ev.total - ev.i) / rate if rate > 0 else float("nan")
        eta_text = (f"{eta:.0f} s left" if eta < 120 else f"{eta / 60:.1f} min left") if eta == eta else ""
        loss = ev.losses.get("total", next(iter(ev.losses.values()), float("nan")))
        return f"iteration {ev.i}/{ev.total} · {rate:.1f} it/s · {eta_text} · loss {loss:.4g}"
