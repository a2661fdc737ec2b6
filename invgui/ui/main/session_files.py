"""Sessions on disk from the window: save, open, the autosave brought back at start, and the
recent images/sessions menus (kept in the window's settings)."""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLabel

from ...core.autosave import AutosaveStore, SlotLock, other_autosaves
from ...core.session import SUFFIX, QueueError, Session, SessionError
from ..widgets import folders

SESSION_FILTER = f"invgui session (*{SUFFIX});;All files (*)"
MAX_RECENT = 10


class SessionFiles:
    """On narrow inputs: the controller (the session, its queue and autosave), the window's state
    (the shown run and representation), the Qt main window it titles, lays out and tells things
    in its status bar (``window``: only QMainWindow's own methods are used, and ``autosave_label``
    is set on it), the settings, the File menu's submenus (``menus``: recent images, recent
    sessions, other windows' autosaves), and callables to open an image, put the window on a
    restored run's settings, and show an error."""

    def __init__(self, ctx, settings, menus: Callable[[], Any], take_run_settings: Callable[[Any], None]):
        self.controller, self.state, self.window, self.settings, self.menus = (ctx.controller, ctx.state, ctx.window,
                                                                              settings, menus)
        self.open_image, self.take_run_settings, self.show_error = ctx.open_image, take_run_settings, ctx.show_error

    def save_session(self, path: str | os.PathLike) -> Path | None:
        path = Path(path)
        if path.suffix != SUFFIX:
            path = path.with_suffix(SUFFIX)
        try:
            out = self.controller.session.save(path)
        except OSError as e:
            self.show_error("Cannot save the session", str(e))
            return None
        self.add_recent("sessions", str(out))
        self.window.setWindowTitle(f"invgui — {out.name}")
        self.window.statusBar().showMessage(f"saved {len(self.controller.session.runs)} runs to {out}", 8000)
        return out

    def open_session(self, path: str | os.PathLike, *, replace: bool = True) -> bool:
        if self.controller.running():
            self.show_error("Busy", "Stop the current run before opening a session.")
            return False
        try:
            session = Session.load(path)
        except SessionError as e:
            self.show_error("Cannot open the session", str(e))
            return False
        if not self.replace_session(session, f"{path}"):
            return False
        if session.path is not None and replace:
            self.add_recent("sessions", str(session.path))
            self.window.setWindowTitle(f"invgui — {session.path.name}")
        return True

    def replace_session(self, session: Session, source: str) -> bool:
        """Show ``session`` instead of the current one; if showing it fails, the current one stays."""
        old = self.controller.session
        try:
            self.controller.replace_session(session)
            return True
        except QueueError as e:
            self.show_error("Busy", str(e))
            return False
        except Exception as e:                        # a validated file should never get here
            detail = traceback.format_exc()
            self.controller.replace_session(old)
            self.show_error("Cannot show the session", f"{source}: {type(e).__name__}: {e}", detail)
            return False

    def restore_autosave(self) -> bool:
        """Bring back the runs of the last session (after a crash, or simply the last time).  An
        unreadable autosave is moved aside (the message says where) and the window starts empty."""
        store = self.controller.autosave_store           # it learns which results are on disk already
        if self.controller.autosave_note:             # a second window: said for as long as it is open
            self.window.autosave_label = QLabel(f"autosave: {store.folder.name}" if self.controller.autosave_enabled
                                      else "no autosave")
            self.window.autosave_label.setToolTip(self.controller.autosave_note)
            self.window.statusBar().addPermanentWidget(self.window.autosave_label)
            self.window.statusBar().showMessage(self.controller.autosave_note, 15000)
        found = store.recover()
        if found.message:
            self.show_error("The autosave could not be read in full", found.message[:1].upper() + found.message[1:])
        self.offer_other_autosaves()
        if found.session is None:
            return False
        if not self.replace_session(found.session, str(store.folder)):
            return False
        shown = self.state.shown_run
        if shown is not None and self.state.rep is not None:   # (a model still loading: taken when it arrives)
            self.take_run_settings(shown)
        self.window.statusBar().showMessage(f"restored {len(found.session.runs)} run(s) from the autosave "
                                  f"({store.folder})", 10000)
        return True

    def offer_other_autosaves(self) -> list:
        """The autosaves other windows left (no live window holds them), offered in the File menu:
        one entry each, which adds that window's runs to this session."""
        others = other_autosaves(self.controller.autosave_store.folder) if self.controller.autosave_enabled else []
        menu = self.menus().other_autosaves
        menu.clear()
        for folder, n in others:
            menu.addAction(f"{n} run(s) autosaved by another window ({folder})",
                           functools.partial(self.add_other_autosave, folder))
        menu.setEnabled(bool(others))
        if others:
            self.window.statusBar().showMessage(
                f"another window's autosave ({sum(n for _, n in others)} run(s)) is kept: "
                "File ▸ Autosaves of other windows brings it back", 15000)
        return others

    def add_other_autosave(self, folder: str | os.PathLike) -> bool:
        """Add the runs another window autosaved to ``folder`` to this session; once this window's
        own autosave names them, that folder is removed (not before: nothing can be lost)."""
        folder = Path(folder)
        store = AutosaveStore(folder, lock=SlotLock.acquire(folder))
        if store.lock is None:
            self.show_error("Cannot add the runs", f"{folder}: another invgui window holds this autosave")
            return False
        try:
            found = store.recover()
            if found.message:
                self.show_error("The autosave could not be read in full", found.message)
            if found.session is None:
                return False
            try:
                self.controller.add_runs(found.session.runs)
            except QueueError as e:
                self.show_error("Busy", str(e))
                return False
            self.controller.autosave(wait=True)
            if not self.controller.autosave_store.names_runs([r.id for r in found.session.runs]):
                return True                        # not in this window's autosave yet: the folder stays
            import shutil

            store.release()
            shutil.rmtree(folder, ignore_errors=True)
            self.window.statusBar().showMessage(f"added {len(found.session.runs)} run(s) from {folder}", 10000)
            return True
        finally:
            store.release()
            self.offer_other_autosaves()

    def open_session_dialog(self) -> None:
        path = folders.open_dialog(self.window, "Open session", "sessions", SESSION_FILTER)
        if path:
            self.open_session(path)

    def save_session_now(self) -> None:
        if self.controller.session.path is not None:
            self.save_session(self.controller.session.path)
        else:
            self.save_session_as()

    def save_session_as(self) -> None:
        path, _ = folders.save_dialog(self.window, "Save session", "sessions", f"session{SUFFIX}", SESSION_FILTER)
        if path:
            self.save_session(path)

    # -- recent files, window layout ---------------------------------------------------------------
    def add_recent(self, kind: str, value: str) -> None:
        items = [v for v in self.recent(kind) if v != value]
        self.settings.setValue(f"recent/{kind}", ([value] + items)[:MAX_RECENT])
        self.fill_recent_menus()

    def recent(self, kind: str) -> list[str]:
        v = self.settings.value(f"recent/{kind}", []) or []
        return v if isinstance(v, list) else [v]

    def fill_recent_menus(self) -> None:
        menus = self.menus()
        for menu, kind, action in ((menus.recent_images, "images", self.open_image),
                                   (menus.recent_sessions, "sessions", self.open_session)):
            menu.clear()
            for v in self.recent(kind):
                menu.addAction(v, functools.partial(action, v))
            menu.setEnabled(bool(self.recent(kind)))

    def restore_layout(self) -> None:
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if geometry is not None:
            self.window.restoreGeometry(geometry)
        if state is not None:
            self.window.restoreState(state)
        self.fill_recent_menus()
