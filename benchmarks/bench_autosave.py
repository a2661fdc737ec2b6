"""Cost of the window's autosave as a session grows, measured in one run.

    python benchmarks/bench_autosave.py [--runs 204] [--size 96] [--restarts 4] [--iters 40]

A session of ``--runs`` finished runs (random images — they compress worse than photographs, so
the figures are an upper bound — with a target, a deviation map and four loss histories each) is
written three ways: the whole session as one ``.invgui`` file (what the autosave did before it
became incremental), the first incremental autosave (every result), then the incremental
autosave after one new result and after a rename only (what a tick costs in a long session).
Then the time to read the autosave back at start.  Prints figures; never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ["INVGUI_HOME"] = tempfile.mkdtemp(prefix="invgui-bench-autosave-")

from invgui.core.autosave import AutosaveStore  # noqa: E402
from invgui.core.events import Result  # noqa: E402
from invgui.core.session import Run, Session  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=204)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--iters", type=int, default=40)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, k = args.size, args.restarts

    def finished(i: int) -> Run:
        r = Run.of(method="optimize", model="efficientnet_lite0", layer="blocks.3", image="sample:coffee",
                params={"iters": args.iters, "seed": i})
        r.result = Result(images=rng.random((k, n, n, 3), dtype=np.float32),
                          target=rng.random((n, n, 3), dtype=np.float32),
                          history={t: list(rng.random(args.iters)) for t in ("total", "feature", "alpha", "tv")},
                          metrics={"start_representation_error": 1.0, "representation_error": 0.5,
                                   "iterations": args.iters, "iterations_per_second": 20.0, "seconds": 2.0},
                          record={"representation": "efficientnet_lite0", "layer": "blocks.3",
                                  "layer_shape": [40, 6, 6]},
                          deviation=rng.random((n, n), dtype=np.float32) if k > 1 else None)
        r.state = "done"
        return r

    session = Session(runs=[finished(i) for i in range(args.runs)])

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    whole = os.path.join(os.environ["INVGUI_HOME"], "whole.invgui")
    t_whole = timed(lambda: session.save(whole, remember=False))
    store = AutosaveStore()
    t_first = timed(lambda: store.write(session))
    session.add(finished(args.runs))
    t_one = timed(lambda: store.write(session))
    session.runs[0].name = "renamed"
    t_rename = timed(lambda: store.write(session))
    t_read = timed(AutosaveStore().recover)
    files = list((store.folder / "runs").iterdir())
    print(f"# bench_autosave: {platform.machine()}, {os.cpu_count()} cores; {args.runs} runs of {k} × {n} px "
          f"images, {args.iters} iterations of 4 loss terms")
    print(f"whole session as one file: {t_whole:.2f} s, {os.path.getsize(whole) / 2**20:.1f} MiB")
    print(f"incremental, first autosave (every result): {t_first:.2f} s, {len(files)} result files, "
          f"{sum(f.stat().st_size for f in files) / 2**20:.1f} MiB")
    print(f"incremental, one new result: {t_one * 1000:.0f} ms; a rename only: {t_rename * 1000:.0f} ms "
          f"(index {store.index.stat().st_size / 1024:.0f} KiB); ratio whole / one new result: "
          f"{t_whole / t_one:.0f}×")
    print(f"reading the autosave back at start: {t_read:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
