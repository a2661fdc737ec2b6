"""An image pane: a titled pyqtgraph view with zoom (wheel) and pan (drag)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


class SameRegionViewBox(pg.ViewBox):
    """A view box whose linked partners show the same region of the image.  pyqtgraph lines linked
    views up by their screen positions when their screen rectangles overlap (plots stacked over one
    shared axis), shifting the range by the panes' offset; for panes of one image laid out anew
    (a restored session's dock layout) that left the original half out of its pane.  Replicating
    the partner's range is what linked image panes mean.

    Only the user's zoom or pan is replicated, from the pane the mouse changed (``user_region``)
    to its partners, which follow it (``following``) but are never followed in turn: a pane that
    fits its own image (re-fitting as it is resized), an empty one, or a follower is not a region
    to follow.  Panes of other shapes replicating each other's ranges each widened the range to
    their aspect, back and forth, until the image was a third of its pane (after a run finished
    and the grid grew)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user_region = self.following = False
        self.sigRangeChangedManually.connect(self._user_changed)

    def _user_changed(self, *_):
        self.user_region, self.following = True, False

    def fit(self) -> None:
        """Fit the whole image again, and follow it as the pane is resized."""
        self.user_region = self.following = False
        self.enableAutoRange()

    def linkedViewChanged(self, view, axis):
        if self.linksBlocked or view is None or not getattr(view, "user_region", False):
            return
        self.user_region, self.following = False, True
        lo, hi = view.viewRange()[axis]
        view.blockLink(True)
        try:
            self.enableAutoRange(axis, False)
            if axis == pg.ViewBox.XAxis:
                self.setXRange(lo, hi, padding=0)
            else:
                self.setYRange(lo, hi, padding=0)
        finally:
            view.blockLink(False)


class ImagePane(QWidget):
    """``pixelHovered`` carries a readout like ``"x 12, y 40: R 0.51 G 0.32 B 0.20"`` ("" off the image)."""

    pixelHovered = Signal(str)
    titleDoubleClicked = Signal()

    def __init__(self, title: str, parent: QWidget | None = None, unit: bool = False):
        """``unit``: draw every image one unit wide whatever its pixel size, so panes that share
        zoom and pan (original, reconstruction, difference) stay aligned when their sizes differ."""
        super().__init__(parent)
        self.unit = unit
        self.scale = 1.0                             # view units per pixel
        self.title_text = title                      # the whole title (the label shows it elided)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: bold; padding: 2px;")
        # One line, elided to the pane with the whole title in the tooltip: wrapped titles took 2–3
        # lines in the four-pane layout and moved the images down; Ignored: it never widens the window.
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setMinimumWidth(50)
        self.title.setToolTip(title)
        self.view_widget = pg.GraphicsLayoutWidget()
        self.view = SameRegionViewBox(lockAspect=True, invertY=True, enableMenu=True)
        self.view_widget.addItem(self.view)
        self.view.setDefaultPadding(0.02)
        self.view.disableAutoRange()                 # an empty pane never ranges (see set_image)
        # autoDownsample: a picture shown smaller than its pixels (HOG glyphs, probe strips) is
        # averaged rather than sampled, so thin lines do not vanish.
        self.item = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.view.addItem(self.item)
        self.image: np.ndarray | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.title)
        lay.addWidget(self.view_widget, 1)
        self.view_widget.scene().sigMouseMoved.connect(self._hover)

    def readout(self, x: float, y: float) -> str:
        """The value under view coordinates (x, y), or "" outside the image."""
        if self.image is None:
            return ""
        xi, yi = int(np.floor(x / self.scale)), int(np.floor(y / self.scale))
        h, w = self.image.shape[:2]
        if not (0 <= xi < w and 0 <= yi < h):
            return ""
        r, g, b = (self.image[yi, xi, :3] / 255.0).tolist()
        return f"{self.title_text.split(' — ')[0]}: x {xi}, y {yi}: R {r:.3f} G {g:.3f} B {b:.3f}"

    def mouseDoubleClickEvent(self, e) -> None:
        """A double click on the title (the view keeps its own double clicks)."""
        self.titleDoubleClicked.emit()
        super().mouseDoubleClickEvent(e)

    def _hover(self, pos) -> None:
        p = self.view.mapSceneToView(pos)
        self.pixelHovered.emit(self.readout(p.x(), p.y()))

    def link(self, other: ImagePane) -> None:
        """Share zoom and pan with ``other`` (images of the same size)."""
        self.view.setXLink(other.view)
        self.view.setYLink(other.view)

    def set_title(self, text: str) -> None:
        self.title_text = text
        self.title.setToolTip(text)
        self._elide_title()

    def _elide_title(self) -> None:
        room = self.title.contentsRect().width() - 4          # the style sheet's padding
        self.title.setText(self.title.fontMetrics().elidedText(self.title_text, Qt.TextElideMode.ElideRight,
                                                               max(room, 20)))

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._elide_title()

    def set_image(self, img: np.ndarray | None) -> None:
        """Show an H×W×3 image (uint8, or float in [0, 1]); keeps the zoom unless the size changes."""
        if img is None:
            # An empty item has zero-size bounds at the origin: with auto-range on, the view would
            # range onto them and, linked, drag its partners (the original) off their image — the
            # original was shown off-centre after a layer switch or a restored session.
            self.view.disableAutoRange()
            self.item.clear()
            self.image = None
            return
        if img.dtype != np.uint8:
            img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
        resized = self.image is None or self.image.shape != img.shape
        self.image = img
        # Levels stay given: auto-downsampling hands the item float means, which need them.
        self.item.setImage(img, autoLevels=False, levels=(0, 255))
        if self.unit:
            from PySide6.QtCore import QRectF

            h, w = img.shape[:2]
            self.scale = 1.0 / w
            self.item.setRect(QRectF(0, 0, 1.0, h / w))
        fitted = all(a is not False for a in self.view.autoRangeEnabled())
        if resized or not (self.view.user_region or self.view.following or fitted):
            # Auto-range stays on (the pane re-fits the whole image whenever its size changes) until
            # the user zooms or pans; a new image size fits it again.  A pane already fitting its
            # image of this size is left alone (re-enabling auto-range re-ranged it, per preview).
            self.view.fit()


def colourise(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """Map a 2-D array to RGB uint8 with a pyqtgraph colour map, scaled to its own range."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return pg.colormap.get(name).map(scaled.astype(np.float32), mode="byte")[..., :3]


def mosaic(images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Tile H×W×3 uint8 images in a near-square grid with white gaps."""
    n = len(images)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h, w = images[0].shape[:2]
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = im
    return out


class FeatureMapPane(ImagePane):
    """One channel of Φ0 at the chosen layer, with a rectangle to pick a window of neurons.

    ``windowPicked`` carries ``"x0,y0,x1,y1"`` in feature-map cells ("" for the whole map).
    """

    windowPicked = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Feature map", parent)
        self.shape: tuple[int, int] | None = None
        self.spec = ""              # the window asked for (drawn once a map is there: `gui --window`)
        self.roi = pg.RectROI([0, 0], [1, 1], snapSize=1.0, translateSnap=True, scaleSnap=True,
                              pen=pg.mkPen("#ff5050", width=2))
        self.roi.setZValue(10)
        self.view.addItem(self.roi)
        self.roi.sigRegionChangeFinished.connect(self._roi_changed)
        self.roi.setToolTip("Drag or resize to invert (or maximise) only the neurons inside")
        self.setToolTip("One channel of the target features (Channels picks which); drag or resize the "
                        "red box to invert only the neurons inside it")

    def set_map(self, fmap: np.ndarray | None, title: str) -> None:
        self.set_title(title)
        if fmap is None:
            self.set_image(None)
            self.shape = None
            self.roi.hide()
            return
        self.set_image(colourise(fmap))
        h, w = fmap.shape
        if self.shape != (h, w):
            self.shape = (h, w)
            self.roi.maxBounds = pg.QtCore.QRectF(0, 0, w, h)
            self.set_window(self.spec)
        self.roi.show()

    def set_window(self, spec: str) -> None:
        """Show the rectangle of a window spec (whole map when empty or not a rectangle)."""
        self.spec = spec
        if self.shape is None:
            return
        from ...core.subsets import SubsetError, parse_window

        h, w = self.shape
        try:
            x0, y0, x1, y1 = parse_window(spec, h, w)
        except SubsetError:
            x0, y0, x1, y1 = 0, 0, w, h
        self.roi.blockSignals(True)
        self.roi.setPos((x0, y0))
        self.roi.setSize((x1 - x0, y1 - y0))
        self.roi.blockSignals(False)

    def _roi_changed(self) -> None:
        if self.shape is None:
            return
        h, w = self.shape
        x, y = (int(round(v)) for v in self.roi.pos())
        sw, sh = (int(round(v)) for v in self.roi.size())
        x0, y0 = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
        x1, y1 = min(max(x0 + max(sw, 1), x0 + 1), w), min(max(y0 + max(sh, 1), y0 + 1), h)
        self.windowPicked.emit("" if (x0, y0, x1, y1) == (0, 0, w, h) else f"{x0},{y0},{x1},{y1}")
