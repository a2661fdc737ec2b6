"""An evaluation's results folder (``invgui evaluate``) in the Compare window: its summary table,
its error-against-depth plot for any measure, every run's numbers, and the runs' images (the
contact sheet of a layer; a run beside the other methods' reconstructions of its image, when they
were kept); File › Export writes its figures and table for a paper.

Nothing here changes the folder: it is read as it is (``core.evaluate.open_results``), also while
an evaluation is still writing it (Reload reads it again)."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core import evaluate as E
from ...core.compare import labelled_grid, method_word
from ..widgets import folders, wheel_guard
from ..widgets.image_pane import ImagePane
from ..widgets.plots import cache_axes

RUN_COLUMNS = (("index", "run"), ("image", "image"), ("nre", "rec. error"), ("representation_error", "rep. error"),
               ("psnr", "PSNR dB"), ("ssim", "SSIM"), ("perceptual", "judge dist."), ("seconds", "s"),
               ("device", "device"))


class RunsModel(QAbstractTableModel):
    """The runs of one method × layer, for a QTableView: an evaluation of 50,000 images is 50,000
    rows, which as QTableWidget items took 10 s to fill (measured); a model gives the view only the
    rows in sight, and sorts by value with one Python sort."""

    RUN = Qt.ItemDataRole.UserRole + 1          # the run's index in the work list

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.cols: list[tuple[str, str]] = []
        self.n = math.nan                       # the summary's N: a row's error is its distance / N

    def set_rows(self, rows: list[dict], cols: list[tuple[str, str]], n: float) -> None:
        self.beginResetModel()
        self.rows, self.cols, self.n = list(rows), cols, n
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:          # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:       # noqa: B008
        return 0 if parent.isValid() else len(self.cols)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.cols[section][1]
        return None

    def value(self, r: dict, key: str):
        """What a cell holds and sorts by: text for the image and the device, else a number."""
        if key == "image":
            return _image_name(r["image"])
        if key == "device":
            return r["device"]
        return float(r["distance"]) / self.n if key == "nre" else float(r[key])

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        r, key = self.rows[index.row()], self.cols[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            v = self.value(r, key)
            if isinstance(v, str):
                return v
            return "—" if math.isnan(v) else format(v, {"index": ".0f", "psnr": ".2f", "seconds": ".2f"}.get(key,
                                                                                                       ".3f"))
        if role == Qt.ItemDataRole.TextAlignmentRole and key not in ("image", "device"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and key == "image":
            return r["image"]
        if role == self.RUN:
            return int(r["index"])
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.cols):     # the view asks at once, before there are columns
            return
        key = self.cols[column][0]

        def by(r: dict):
            v = self.value(r, key)
            return (False, v) if isinstance(v, str) else (math.isnan(v), v)   # NaN ("—") last
        self.layoutAboutToBeChanged.emit()
        self.rows.sort(key=by, reverse=order == Qt.SortOrder.DescendingOrder)
        self.layoutChanged.emit()


def _pick_rows(t: QTableView) -> None:
    """Read-only, rows picked one at a time."""
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().hide()


def _item_table(on_select: Callable[[], None]) -> QTableWidget:
    """A table of its own items (the summary)."""
    t = QTableWidget()
    _pick_rows(t)
    t.itemSelectionChanged.connect(on_select)
    return t


def _model_table(on_select: Callable[[], None], model: RunsModel) -> QTableView:
    """A sorted view of ``model`` (the runs: tens of thousands of rows)."""
    t = QTableView()
    t.setModel(model)
    t.setSortingEnabled(True)
    t.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
    _pick_rows(t)
    t.selectionModel().selectionChanged.connect(lambda *_: on_select())
    return t


def _image_name(source: str) -> str:
    return source[7:] if source.startswith("sample:") else Path(source).name


class EvaluationPanel(QWidget):
    """One results folder; ``reload`` reads it again."""

    def __init__(self, folder: str | os.PathLike, show_error: Callable[[str, str], None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.show_error = show_error
        self.results = E.open_results(folder)          # raises EvaluateError for a folder that is not one
        self.folder = self.results.folder
        self.header = QLabel("")
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.summary_table = _item_table(self._summary_selected)
        self.runs = RunsModel()
        self.runs_table = _model_table(self._run_selected, self.runs)
        self.runs_label = QLabel("")

        self.metric_box = QComboBox()
        self.metric_box.currentIndexChanged.connect(lambda _=None: self.draw_plot())
        self.plot = pg.PlotWidget(background="w")
        cache_axes(self.plot)
        self.plot_note = QLabel("")
        self.plot_note.setWordWrap(True)
        self.plot_note.setStyleSheet("color: #8a5a00")
        self.pane = ImagePane("images")

        export = QPushButton("Export figures…")
        export.setToolTip("The plot (PNG and SVG), the summary (CSV and a LaTeX table) and the contact sheets")
        export.clicked.connect(self.export_dialog)
        reload = QPushButton("Reload")
        reload.setToolTip("Read the folder again (an evaluation may still be writing it)")
        reload.clicked.connect(self.reload)
        self.said = QLabel("")                     # what the last export wrote
        self.said.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.header, 1)
        buttons.addWidget(self.said)
        buttons.addWidget(reload)
        buttons.addWidget(export)

        left = QSplitter(Qt.Orientation.Vertical)
        runs_box = QWidget()
        rl = QVBoxLayout(runs_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.runs_label)
        rl.addWidget(self.runs_table, 1)
        left.addWidget(self.summary_table)
        left.addWidget(runs_box)
        left.setSizes([300, 500])
        plot_box = QWidget()
        pl = QVBoxLayout(plot_box)
        pl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Plot"))
        row.addWidget(self.metric_box)
        row.addStretch(1)
        pl.addLayout(row)
        pl.addWidget(self.plot, 1)
        pl.addWidget(self.plot_note)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(plot_box)
        right.addWidget(self.pane)
        right.setSizes([400, 450])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([750, 650])
        lay = QVBoxLayout(self)
        lay.addLayout(buttons)
        lay.addWidget(split, 1)
        self._fill()
        wheel_guard.guard(self)                     # its boxes take the wheel only once clicked

    # -- contents ------------------------------------------------------------------------------
    def reload(self) -> None:
        try:
            self.results = E.open_results(self.folder)
        except E.EvaluateError as e:
            self.show_error("Cannot read the results folder", str(e))
            return
        self._fill()

    def measures(self) -> list[tuple[str, str, str]]:
        return E.measures(self.results.summary) if self.results.summary else list(E.MEASURES[:4])

    def pairs(self) -> list[tuple[str, str]]:
        """(method, layer) of the plan, in the summary's order (layers, then methods)."""
        p = self.results.plan
        return [(m, layer) for layer in p.layers for m in p.methods]

    def _fill(self) -> None:
        res = self.results
        self.header.setText(f"<b>{html.escape(str(res.folder))}</b><br>{html.escape(res.describe())}")
        cols = self.measures()
        summary = {(r["method"], r["layer"]): r for r in res.summary}
        counts: dict[tuple[str, str], int] = {}
        for r in res.rows:
            counts[(r["method"], r["layer"])] = counts.get((r["method"], r["layer"]), 0) + 1
        t = self.summary_table
        keep = self.selected_pair()
        t.blockSignals(True)
        t.clear()
        t.setColumnCount(3 + len(cols))
        t.setHorizontalHeaderLabels(["method", "layer", "n", *(h for _, h, _ in cols)])
        pairs = self.pairs()
        t.setRowCount(len(pairs))
        for i, (m, layer) in enumerate(pairs):
            s = summary.get((m, layer))
            cells = [method_word(m), layer, str(s["n"] if s else counts.get((m, layer), 0))]
            cells += [E.mean_pm_std(s, k, fmt) if s else "—" for k, _, fmt in cols]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, (m, layer))
                if j >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                t.setItem(i, j, item)
        t.resizeColumnsToContents()
        t.blockSignals(False)
        self.metric_box.blockSignals(True)
        chosen = self.metric_box.currentText()
        self.metric_box.clear()
        self.metric_box.addItems([h for _, h, _ in cols])
        if chosen in [h for _, h, _ in cols]:
            self.metric_box.setCurrentText(chosen)
        self.metric_box.blockSignals(False)
        self.draw_plot()
        row = pairs.index(keep) if keep in pairs else 0
        t.selectRow(row)                                # the table was cleared: this selects anew (and fills the runs)

    def selected_pair(self) -> tuple[str, str] | None:
        items = self.summary_table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def draw_plot(self) -> None:
        from ..widgets.figures import draw_depth

        if not self.results.summary:
            self.plot.getPlotItem().clear()
            self.plot_note.setText("The plot is drawn from summary.csv, written when every run is done.")
            self.plot_note.show()
            return
        self.plot_note.hide()
        given = self.results.plan.template.params
        prior = given.parameterisation if given is not None else None
        draw_depth(self.plot.getPlotItem(), self.results.summary, *self.plotted(), prior=prior)

    def plotted(self) -> tuple[str, str]:
        """(summary key, axis label) of the measure chosen for the plot."""
        from ..widgets.figures import NRE_LABEL

        key, heading, _ = self.measures()[max(self.metric_box.currentIndex(), 0)]
        return key, {"nre": NRE_LABEL}.get(key, heading)

    def _summary_selected(self) -> None:
        pair = self.selected_pair()
        if pair is None:
            return
        method, layer = pair
        mine = [r for r in self.results.rows if (r["method"], r["layer"]) == (method, layer)]
        s = next((r for r in self.results.summary if (r["method"], r["layer"]) == pair), None)
        n = float(s["set_distance"]) if s and s.get("set_distance") else math.nan
        cols = [c for c in RUN_COLUMNS if c[0] != "perceptual" or self.results.plan.judge]
        self.runs.set_rows(mine, cols, n)
        header = self.runs_table.horizontalHeader()
        self.runs.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self.runs_table.resizeColumnsToContents()      # from the rows in sight
        self.runs_label.setText(f"{len(mine)} runs of {method_word(method)} at {layer}: pick one to see its "
                                "image beside the other methods'" + ("" if s else " (the rec. error needs "
                                                                      "summary.csv)"))
        self.show_sheet(layer)

    def show_sheet(self, layer: str) -> None:
        """The layer's contact sheet (the first images, rows methods), when it was written."""
        from ...core.images import load_image

        path = self.results.sheet(layer)
        if path is None:
            self.pane.set_image(None)
            self.pane.set_title(f"{layer}: no contact sheet yet (written when every run is done)")
            return
        self.pane.set_image(load_image(str(path)))
        self.pane.set_title(f"{layer}: contact sheet {path.name}")

    def _run_selected(self) -> None:
        rows = self.runs_table.selectionModel().selectedRows()
        if rows:
            self.show_run(rows[0].data(RunsModel.RUN))

    def show_run(self, index: int) -> None:
        """Run ``index``'s photo beside every method's reconstruction of it at its layer (those kept)."""
        from ...core.images import ImageError, load_image, resize_center_crop

        row = next((r for r in self.results.rows if int(r["index"]) == int(index)), None)
        if row is None:
            return
        same = {r["method"]: r for r in self.results.rows if (r["image"], r["layer"]) == (row["image"], row["layer"])}
        side = int(row["side"])
        try:
            photo = resize_center_crop(load_image(row["image"]), side)
        except ImageError:                                  # moved or deleted since: the reconstructions still show
            photo = None
        methods = [m for m in self.results.plan.methods if m in same]
        cells: list[np.ndarray | None] = [photo]
        for m in methods:
            path = self.results.image(int(same[m]["index"]))
            cells.append(load_image(str(path)) if path is not None else None)
        kept = sum(c is not None for c in cells[1:])
        self.pane.set_image(labelled_grid([cells], [""], ["photo", *(method_word(m) for m in methods)],
                                          tile=max(side, 128)))
        note = "" if kept == len(methods) else (f" — {len(methods) - kept} reconstruction(s) not kept "
                                                "(--save-images keeps every one)")
        self.pane.set_title(f"{_image_name(row['image'])} at {row['layer']}{note}")

    # -- export ------------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        name = f"{self.folder.name or 'evaluation'}_error_vs_layer.png"
        path, _ = folders.save_dialog(self, "Export the evaluation's figures", "exports", name, "PNG (*.png)")
        if path:
            self.export_figures(path)

    def export_figures(self, path: str | os.PathLike) -> list[Path] | None:
        """``NAME.png`` and ``NAME.svg`` (the plot as shown), ``NAME.csv`` (summary.csv) and
        ``NAME.tex`` (a LaTeX table), and ``NAME_sheet_LAYER.png`` per contact sheet: all of them
        or none (``files.FileSet``); a place that cannot be written is said."""
        from ...core.files import FileSet, atomic_write, check_writable
        from ..widgets.figures import depth_figure

        res = self.results
        if not res.summary:
            self.show_error("Nothing to export yet", f"{res.folder} has no summary.csv yet: it is written when every "
                            "run of the evaluation is done.")
            return None
        base = Path(path).with_suffix("")
        sheets = [(layer, p) for layer in res.plan.layers if (p := res.sheet(layer)) is not None]
        targets = [base.with_suffix(s) for s in (".png", ".svg", ".csv", ".tex")]
        targets += [base.with_name(f"{base.name}_sheet_{layer}.png") for layer, _ in sheets]
        try:
            for t in targets:
                check_writable(t)
            caption = (f"{res.plan.model}: mean ± std over {res.summary[0]['n']} images ({res.plan.data}); the "
                       "best per layer in bold.")
            with FileSet():
                key, label = self.plotted()
                written = depth_figure(res.summary, targets[0], targets[1], key, label,
                                       "invgui: evaluation " + res.folder.name)
                summary_csv = (res.folder / "summary.csv").read_bytes()
                written.append(atomic_write(targets[2], lambda tmp: Path(tmp).write_bytes(summary_csv)))
                latex = E.summary_latex(res.summary, caption)
                written.append(atomic_write(targets[3], lambda tmp: Path(tmp).write_text(latex, encoding="utf-8")))
                for (_, src), dest in zip(sheets, targets[4:], strict=True):
                    data = src.read_bytes()
                    written.append(atomic_write(dest, lambda tmp, d=data: Path(tmp).write_bytes(d)))
        except Exception as e:          # pyqtgraph's exporters raise plain Exceptions on write errors
            self.show_error("Cannot export the evaluation's figures", str(e))
            return None
        self.said.setText(f"wrote {len(written)} files in {base.parent}: {', '.join(p.name for p in written)}")
        return written
