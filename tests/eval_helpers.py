"""Small evaluations and runs shared by the core tests and the window's tests (import
``from eval_helpers import …``; tests/ is on the path through its conftest.py)."""

import dataclasses
from pathlib import Path

from invgui.core import evaluate as E
from invgui.core.files import save_png
from invgui.core.images import load_image
from invgui.core.methods.optimize import PRESETS


def photos(root: Path, names=("astronaut", "rocket", "camera", "coffee")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        save_png(root / f"{name}.png", load_image(f"sample:{name}")[::8, ::8])
    return root


def plan(data, **kw) -> E.Plan:
    """One layer, the decoder and a 2-iteration optimisation at 48 px: the whole folder in seconds."""
    p = dataclasses.replace(PRESETS.get("fast"), iters=2)
    base = dict(model="efficientnet_lite0", layers=("blocks.5",), methods=("decoder", "optimize"), data=str(data),
                params=dataclasses.asdict(p), size=48)
    return E.Plan.of(**{**base, **kw})


# A run that fails for real, as the dip preset did at 224 px (issue 37 §3): the Deep Image Prior with
# a learning rate 300× its own saturates its generator to a nearly white image whose representation
# error ends above the one it started from — and the run ends "done" without a word.
COLLAPSE = dataclasses.replace(PRESETS.get("dip"), iters=30, size=64, lr=1.0, restarts=1)
GOOD = dataclasses.replace(PRESETS.get("fast"), iters=30, size=64, restarts=1)
