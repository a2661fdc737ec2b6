"""Events yielded by methods.  A method is ``run(...) -> Iterator[Event]``.

Consumers (CLI, GUI worker, tests) loop over the generator; cancelling is
``gen.close()``, which runs the method's ``finally`` blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Status:
    """A phase change worth telling the user about (loading the model, ...)."""

    message: str


@dataclass(frozen=True)
class Step:
    """One optimisation iteration.

    ``losses`` holds every term (``total`` included) as plain floats;
    ``preview`` is an ``H×W×3`` uint8 image, produced only every k steps.
    """

    i: int                      # 1-based iteration number
    total: int                  # planned number of iterations
    losses: dict[str, float]
    lr: float
    elapsed: float              # seconds since the optimisation started
    preview: np.ndarray | None = None
    item: int = 0               # which target of a batch (optimize.run_batch); 0 for a single run


@dataclass
class Result:
    """The end of a run (also after Stop: ``stopped`` tells)."""

    images: np.ndarray                      # N×H×W×3 float32 in [0, 1]
    target: np.ndarray | None               # H×W×3 float32 in [0, 1], the preprocessed original
    history: dict[str, list[float]]         # per-iteration losses, one list per term
    metrics: dict[str, float]
    record: dict[str, Any] = field(default_factory=dict)   # everything needed to reproduce the run
    stopped: bool = False
    message: str = ""
    deviation: np.ndarray | None = None     # H×W per-pixel std across restarts (None for one restart)
    start: np.ndarray | None = None         # H×W×3: where the optimisation started when it was not noise
                                            # (the hybrid method: the decoder's reconstruction)

    @property
    def image(self) -> np.ndarray:
        return self.images[0]


Event = Status | Step | Result


PER_IMAGE = ("representation_error", "psnr", "ssim", "normalised_reconstruction_error")


def per_image_metrics(m: dict, n: int) -> list[dict]:
    """A batch :class:`Result`'s metrics (means, with ``*_per_image`` lists) as one dict per image: every
    plain metric, and each per-image one taken from its list (a batch of one has no lists)."""
    plain = {k: v for k, v in m.items() if not k.endswith("_per_image")}
    return [{**plain, **{k: m[f"{k}_per_image"][i] for k in PER_IMAGE if f"{k}_per_image" in m}}
            for i in range(n)]
