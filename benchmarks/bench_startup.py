"""Cold start, as ratios to a bare ``python -c "import torch"`` measured in the same run.

Prints, for each of ``--repeat`` rounds (interleaved so that a busy machine affects all alike)
and as medians:

* ``import torch``: a fresh interpreter that only imports torch (the unit);
* ``invgui invert --iters 1``: the whole command on the embedded default (build the model, load
  the weights and the sample image, one iteration, metrics, write PNG and JSON);
* first paint of the window: ``invgui gui`` until the main window has painted (the model then
  loads behind it); needs Qt (offscreen unless a display is set).

Targets (issue 13): invert ≤ 2× import torch; the window paints within 3 s.

    python benchmarks/bench_startup.py [--repeat 5] [--no-window]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _seconds(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def _first_paint(env: dict) -> float:
    t = time.time()
    out = subprocess.run([sys.executable, "-m", "invgui", "gui"], check=True, capture_output=True, text=True,
                         env={**env, "INVGUI_STARTUP_PROBE": "1"})
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("first paint at "))
    return float(line.split()[-1]) - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-window", action="store_true", help="skip the window's first paint (no Qt)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="invgui-startup-")
    env = {**os.environ, "INVGUI_HOME": os.path.join(tmp, "home")}
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    out_png = os.path.join(tmp, "x.png")
    rows = {"import torch": [], "invgui invert --iters 1": [], "window first paint": []}
    # One untimed round first: the page cache then holds the files every round reads.
    _seconds([sys.executable, "-c", "import torch"], env)
    _seconds([sys.executable, "-m", "invgui", "invert", "--iters", "1", "-o", out_png, "--quiet",
              "sample:chelsea"], env)
    for r in range(args.repeat):
        rows["import torch"].append(_seconds([sys.executable, "-c", "import torch"], env))
        rows["invgui invert --iters 1"].append(_seconds(
            [sys.executable, "-m", "invgui", "invert", "--iters", "1", "-o", out_png, "--quiet", "sample:chelsea"],
            env))
        if not args.no_window:
            rows["window first paint"].append(_first_paint(env))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in rows.items() if v), flush=True)
    unit = statistics.median(rows["import torch"])
    print(f"\n{'':26s}{'median s':>10s}{'min s':>8s}{'ratio':>8s}   (ratio: median / median import torch)")
    for name, vals in rows.items():
        if vals:
            med = statistics.median(vals)
            print(f"{name:26s}{med:10.2f}{min(vals):8.2f}{med / unit:8.2f}")
    print(f"\nmachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"targets: invert ratio <= 2.0, first paint <= 3.0 s")


if __name__ == "__main__":
    main()
