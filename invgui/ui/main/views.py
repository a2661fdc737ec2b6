"""The main window's views and helpers, made in one place and wired to the state and to each
other's signals — so the window itself is the shell (docks, menus, closing) and no module of
``ui`` imports most of the others.

Each helper takes the shared :class:`~.context.Context` and the widgets it draws on, and
subscribes to the state's fields it draws from in its own constructor.
"""

from __future__ import annotations

from .exporters import Exporters
from .feature_display import FeatureDisplay
from .model_choice import ModelChoice
from .requests import Requests
from .run_actions import RunActions, ask_name
from .run_display import RunDisplay
from .session_files import SessionFiles


class Views:
    def __init__(self, ctx, view, left, right, run_list, live):
        """``view``: the result view (panes and plot); ``left``/``right``: the representation and
        method docks; ``run_list``; ``live``: the run computing (``result_view.LiveRun``)."""
        w = ctx.window
        self.display = RunDisplay(ctx, view, run_list, live, right.metrics_label)
        self.features = FeatureDisplay(ctx, view, left.layer_tree)
        self.models = ModelChoice(ctx, left, right)
        self.files = SessionFiles(ctx, w.settings, lambda: w.acts, self.models.take_run_settings)
        self.exports = Exporters(ctx, history=lambda: live.history, selected=run_list.selected_ids,
                                 view=lambda: view)
        self.requests = Requests(ctx, right)
        self.run_actions = ra = RunActions(ctx, self.models.load_run, ask_name(w))
        left.layer_tree.rowsInView.connect(self.features.receptive_field)
        for signal, slot in ((run_list.renameRequested, ra.rename_dialog), (run_list.duplicateRequested, ra.duplicate),
                             (run_list.rerunRequested, ra.rerun), (run_list.deleteRequested, ra.delete)):
            signal.connect(slot)
