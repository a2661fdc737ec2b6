"""What the run list's context menu does: rename, re-run, duplicate into the window, delete."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QInputDialog

from ...core.session import QueueError, Run


class RunActions:
    """The run list's actions on narrow inputs: the controller (the queue), the window's state
    (which run is shown), and callables for what only the window can do: put a run's settings
    into its widgets (``load``) and ask for a name (``ask_name``)."""

    def __init__(self, ctx, load: Callable[[Run], bool], ask_name: Callable[[str], str | None]):
        self.controller, self.state = ctx.controller, ctx.state
        self.load, self.ask_name, self.show_error = load, ask_name, ctx.show_error

    def rename_dialog(self, run_id: str) -> None:
        name = self.ask_name(self.controller.session.get(run_id).label())
        if name is not None:
            self.controller.rename(run_id, name)

    def rerun(self, run_id: str) -> Run:
        """Queue the same request again."""
        return self.controller.rerun(run_id)

    def duplicate(self, run_id: str) -> bool:
        """Load a run's request into the window (model, layer, image, method, parameters), to change and run."""
        return self.load(self.controller.session.get(run_id))

    def delete(self, run_id: str) -> bool:
        try:
            run = self.controller.remove(run_id)
        except QueueError as e:
            self.show_error("The run is running", str(e))
            return False
        if self.state.shown_run is run:
            self.state.set(shown_run=None, result=None)        # the panes are drawn from the state
        return True


def ask_name(parent) -> Callable[[str], str | None]:
    """The rename dialog: the new name, or None when cancelled."""
    def ask(current: str) -> str | None:
        name, ok = QInputDialog.getText(parent, "Rename run", "Name", text=current)
        return name if ok else None
    return ask
