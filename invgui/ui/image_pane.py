"""An image pane: a titled pyqtgraph view with zoom (wheel) and pan (drag)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class ImagePane(QWidget):
    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: bold; padding: 2px;")
        self.view_widget = pg.GraphicsLayoutWidget()
        self.view = self.view_widget.addViewBox(lockAspect=True, invertY=True, enableMenu=True)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.image: np.ndarray | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.title)
        lay.addWidget(self.view_widget, 1)

    def set_title(self, text: str) -> None:
        self.title.setText(text)

    def set_image(self, img: np.ndarray | None) -> None:
        """Show an H×W×3 image (uint8, or float in [0, 1]); keeps the zoom unless the size changes."""
        if img is None:
            self.item.clear()
            self.image = None
            return
        if img.dtype != np.uint8:
            img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
        resized = self.image is None or self.image.shape != img.shape
        self.image = img
        self.item.setImage(img, autoLevels=False, levels=(0, 255))
        if resized:
            self.view.autoRange(padding=0.02)
