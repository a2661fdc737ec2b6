"""What the window writes to disk: the shown reconstruction, the probe strip, the loss curves and
the runs' metrics — each a set of files written whole or not at all (``files.FileSet``), with
a dialog instead of a traceback when the place cannot be written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...core import representations as R
from ...core.export import export_result, run_record, write_json
from ...core.files import FileSet, check_writable, save_png
from ...core.results import Metrics
from ..widgets import folders


class Exporters:
    """The window's exports on narrow inputs: the controller (the session, decoded images), the
    window's state (what is shown), the widget dialogs open over (``parent``: its status bar
    says what was written), and callables for the rest: the shown curves (``history``), the
    selected runs (``selected``), the result view (``view``: the plot and the probe strip) and
    ``show_error``."""

    def __init__(self, ctx, history: Callable[[], dict], selected: Callable[[], list], view: Callable[[], Any]):
        self.controller, self.state, self.parent = ctx.controller, ctx.state, ctx.window
        self.history, self.selected, self.view, self.show_error = history, selected, view, ctx.show_error

    def _tell(self, message: str) -> None:
        self.parent.statusBar().showMessage(message, 8000)

    # -- dialogs -------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        st = self.state
        if st.result is None:
            return
        rec = st.result.record
        default = f"{Path(st.image_source.replace('sample:', '')).stem}_{rec['representation']}_{rec['layer']}.png"
        path, chosen = folders.save_dialog(self.parent, "Export reconstruction", "exports", default,
                                           "PNG, 8-bit (*.png);;PNG + 16-bit TIFF (*.tif)")
        if path:
            self.export_to(path, tiff=path.lower().endswith((".tif", ".tiff")) or "TIFF" in chosen)

    def export_probe_dialog(self) -> None:
        res = self.state.probe_result
        if res is None:
            return
        default = f"probe_{res.record['probe']}_{res.record['representation']}.png"
        path, _ = folders.save_dialog(self.parent, "Export probe strip", "exports", default, "PNG image (*.png)")
        if path:
            self.export_probe_to(path)

    def export_curves_dialog(self) -> None:
        path, _ = folders.save_dialog(self.parent, "Export loss curves", "exports", "losses.png",
                                      "PNG (*.png);;SVG (*.svg)")
        if path:
            self.export_curves(path)

    def export_metrics_dialog(self) -> None:
        path, _ = folders.save_dialog(self.parent, "Export metrics", "exports", "metrics.csv", "CSV (*.csv)")
        if path:
            self.export_metrics(path, self.selected() or None)

    # -- writers -------------------------------------------------------------------------------
    def export_to(self, path: str | os.PathLike, tiff: bool = False) -> tuple[Path, Path] | None:
        """Write the shown reconstruction (PNG, optionally 16-bit TIFF), its loss CSV and JSON record;
        errors become a dialog."""
        st = self.state
        if st.result is None:
            return None
        path = Path(path)
        if path.suffix.lower() in (".tif", ".tiff"):
            tiff = True
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        run = st.shown_run
        source = run.image if run is not None else st.image_source
        try:
            visual = None
            rec = st.result.record
            if (st.rep is not None and st.rep.name == rec["representation"]
                    and st.rep.describe().get("representation_params") == rec.get("representation_params")):
                visual = R.feature_picture(st.rep, self.controller.image_for(source), rec["input_size"])
            files = export_result(st.result, path, visual=visual, tiff=tiff, image=source, source="gui",
                                  run_name=run.label() if run else None)
        except OSError as e:
            self.show_error("Cannot export",
                            f"{path}: {e.strerror or e}" if not str(e).startswith(str(path)) else str(e))
            return None
        self._tell(f"exported {files[0]} and {files[1]}")
        return files

    def export_probe_to(self, path: str | os.PathLike) -> tuple[Path, Path] | None:
        """Write the probe strip PNG and its JSON record; errors become a dialog."""
        st = self.state
        if st.probe_result is None:
            return None
        path = Path(path).with_suffix(".png")
        try:
            with FileSet():                      # the strip and its record, or neither
                png = save_png(path, self.view().probe_strip)
                js = write_json(path.with_suffix(".json"), run_record(st.probe_result, image=st.image_source,
                                                                      source="gui"))
        except OSError as e:
            self.show_error("Cannot export", str(e))
            return None
        self._tell(f"exported {png} and {js}")
        return png, js

    def export_curves(self, path: str | os.PathLike) -> Path | None:
        """The loss plot as PNG or SVG (by suffix) plus its CSV."""
        from ...core.export import runs_sidecar, write_losses_csv
        from ..widgets.figures import export_plot

        st = self.state
        path = Path(path)
        if path.suffix.lower() != ".svg":
            path = path.with_suffix(".png")
        try:
            check_writable(path)
            with FileSet():                      # the picture, its CSV and its sidecar, or none of them
                svg = path.suffix.lower() == ".svg"
                export_plot(self.view().plot, None if svg else path, path if svg else None, "invgui loss curves")
                history = self.history()
                if history and any(history.values()):
                    write_losses_csv(path.with_suffix(".csv"), history)
                if st.shown_run is not None:
                    runs_sidecar(path, [st.shown_run], curves=str(path))
        except Exception as e:          # pyqtgraph's exporters raise plain Exceptions on write errors
            self.show_error("Cannot export the curves", f"{path}: {e}" if str(path) not in str(e) else str(e))
            return None
        self._tell(f"exported {path}")
        return path

    def export_metrics(self, path: str | os.PathLike, run_ids: list[str] | None = None) -> Path | None:
        """A CSV with one row per run (the selected ones, or all) and its metrics."""
        from ...core.export import METRIC_COLUMNS, runs_sidecar, write_metrics_csv

        session = self.controller.session
        runs = [session.get(i) for i in run_ids] if run_ids else list(session.runs)
        rows = []
        for r in runs:
            row = {"name": r.label(), "state": r.state, "method": r.method, "model": r.model, "layer": r.layer,
                   "image": r.image, "seed": r.param_values().get("seed", ""), "decoder": r.decoder or ""}
            if r.result is not None:
                m = Metrics.of(r.result)
                row.update({k: "" if getattr(m, k, None) is None else getattr(m, k) for k in METRIC_COLUMNS})
            rows.append(row)
        try:
            with FileSet():                      # the CSV and its sidecar, or neither
                out = write_metrics_csv(path, rows)
                runs_sidecar(out, runs, metrics_csv=str(out))
        except OSError as e:
            self.show_error("Cannot export the metrics", str(e))
            return None
        self._tell(f"exported {out}")
        return out
