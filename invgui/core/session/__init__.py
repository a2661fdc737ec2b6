"""Runs and sessions: every reconstruction kept, saved to one file, restored after a crash.

A :class:`Run` is what a user asked for (method, representation and its parameters, layer, method
parameters, image, decoder) plus what came back (the :class:`Result`: images, losses, metrics,
record) and its state.  A :class:`Session` is an ordered list of runs.  ``save`` writes one
``.invgui`` file — a zip holding ``session.json`` (everything but the images) and ``arrays.npz``
(the images, float16) — atomically; ``load`` reads it back without unpickling anything
(``allow_pickle=False``).  The window's autosave (:mod:`invgui.core.autosave`) keeps each result
in a one-run session file of this format.

The package: :mod:`.runs` (a run and its name), :mod:`.model` (the session), :mod:`.queue` (the
run queue and its state rules), :mod:`.fileformat` (the file, written and read, every part checked).
"""

from .fileformat import FORMAT, SUFFIX, SessionError, _validate_doc, read_runs, run_fields, session_json, write_runs
from .model import Session
from .queue import QueueError, RunQueue
from .runs import STATES, Run, default_name, distinct_labels, preset_of

__all__ = ["FORMAT", "SUFFIX", "STATES", "SessionError", "QueueError", "Run", "Session", "RunQueue", "read_runs",
           "write_runs", "run_fields", "session_json", "default_name", "distinct_labels", "preset_of",
           "_validate_doc"]
