"""Paper-scale evaluation: methods × layers × a folder of images, resumable, shardable.

The work list is every (layer, method, image) of a :class:`Plan`, in a fixed order (layers, then
methods, then the images sorted by path).  Each finished run is one row appended to a CSV file and
flushed to disk at once, so a killed evaluation loses at most the runs in flight and a rerun with
the same plan skips the rows already written.  A plan is written to the results folder on the
first run; a rerun with another plan into that folder is refused with the differences named.

Work is shared deterministically: shard ``i`` of ``n`` takes items ``i, i + n, i + 2n, …`` of the
work list and writes ``runs.shard-i-of-n.csv``; whoever finds every item done merges all rows into
``runs.csv`` in work-list order — the file a single process writes — and writes ``summary.csv``.
Under ``torchrun`` the shard is the rank (``RANK`` / ``WORLD_SIZE``); ``--shard I/N`` does the same
for job arrays.  Optimisation runs are batched per layer (one request of several images, each
image's result the one its own run would give); decoders run a batch in one forward pass.

The normalised reconstruction error is paper 001's ‖x − x̂‖/N with N the mean distance between
pairs of the evaluated (readable) images at the evaluation side: rows keep ‖x − x̂‖, the summary
divides by N, so rows of any shard or rerun are comparable.  With a judge (``Plan.judge``, see
core.judge) each row also keeps the perceptual distance ‖C(x̂) − C(x)‖² / ‖C(x)‖² in a network none
of the methods inverts.

The package: :mod:`.plan` (the plan, its work list and shares, the results folder's plan.json),
:mod:`.rows` (the CSV rows, checked, merged), :mod:`.report` (summary, contact sheets, the folder
read back, tables) and :mod:`.runner` (the requests, the run, the merge lock).
"""

from .plan import (
    EvaluateError,
    ImageSetRecord,
    Item,
    Plan,
    check_plan,
    images_of,
    listing_of,
    read_plan_file,
    shard_of,
    validate,
    work_list,
)
from .report import (
    MEASURES,
    N_IMAGES,
    SHEET_IMAGES,
    SUMMARY_FIELDS,
    Results,
    latex_text,
    mean_pm_std,
    measures,
    open_results,
    read_summary,
    set_distance,
    summarise,
    summary_latex,
    summary_table,
    write_sheets,
    write_summary,
)
from .rows import FIELDS, OLD_FIELDS, ROW_END, RowFile, merge, read_row_file, read_rows
from .runner import Progress, common_side, run

__all__ = ['EvaluateError', 'ImageSetRecord', 'Item', 'Plan', 'check_plan', 'images_of', 'listing_of',
           'read_plan_file', 'shard_of', 'validate', 'work_list', 'FIELDS', 'OLD_FIELDS', 'ROW_END',
           'RowFile', 'merge', 'read_row_file', 'read_rows', 'MEASURES', 'N_IMAGES', 'Results',
           'SHEET_IMAGES', 'SUMMARY_FIELDS', 'latex_text', 'mean_pm_std', 'measures', 'open_results',
           'read_summary', 'set_distance', 'summarise', 'summary_latex', 'summary_table', 'write_sheets',
           'write_summary', 'Progress', 'common_side', 'run']
