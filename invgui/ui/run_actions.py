"""What the run list's context menu does: rename, re-run, duplicate into the window, delete."""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog

from ..core.methods.registry import method
from ..core.session import QueueError, Run


class RunActions:
    def __init__(self, window):
        self.w = window

    def rename_dialog(self, run_id: str) -> None:
        w = self.w
        name, ok = QInputDialog.getText(w, "Rename run", "Name", text=w.session.get(run_id).label())
        if ok:
            w.controller.rename(run_id, name)

    def rerun(self, run_id: str) -> Run:
        """Queue the same request again."""
        return self.w.controller.rerun(run_id)

    def duplicate(self, run_id: str) -> bool:
        """Load a run's request into the window (model, layer, image, method, parameters), to change and run."""
        w = self.w
        run = w.session.get(run_id)
        if (w.rep is None or w.rep.name != run.model or w.rep.describe().get("representation_params")
                != run.rep_params or w.random_weights.isChecked() != run.random_weights):
            w.random_weights.blockSignals(True)
            w.random_weights.setChecked(run.random_weights)
            w.random_weights.blockSignals(False)
            if not w.set_model(run.model, run.rep_params):
                return False
        w.set_layer(run.layer)
        if run.image != w.image_source:
            w.open_image(run.image)
        w.set_method(run.method)
        spec = method(run.method)
        if run.params is not None:
            w.form.set_values(run.params)
        if spec.uses_decoder and run.decoder:
            w.decoder_panel.add_file(run.decoder)
        if spec.one_pass and run.decoder:
            w.decoder_panel.size.setValue(run.size)
        w.statusBar().showMessage(f"loaded the settings of {run.label()}: change them and Run", 8000)
        return True

    def delete(self, run_id: str) -> bool:
        w = self.w
        try:
            run = w.controller.remove(run_id)
        except QueueError as e:
            w.show_error("The run is running", str(e))
            return False
        if w.shown_run is run:
            w.shown_run = None
            w.display.show_result(None)
        return True
