"""The pretrained DINOv2 ViT-S/14 inverted at an early, a middle and a late block (docs/models.md).

    python benchmarks/figure_dinov2.py [--images chelsea,coffee] [--layers blocks.2,blocks.5,blocks.11]
                                       [--iters 150] [--out docs/images/figure_dinov2.png]

Columns: the photo, then its reconstruction by optimisation (the ``fast`` preset, 224 px, one
restart) from each block's tokens (class token and 16×16 patches); the representation error
under each is printed.  Needs the dinov2 extra.  The figure is made by this script only.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from invgui.core.compare import labelled_grid, save_sheet  # noqa: E402
from invgui.core.images import load_image, resize_center_crop  # noqa: E402
from invgui.core.methods.optimize_params import PRESETS  # noqa: E402
from invgui.core.request import RunRequest, execute, results  # noqa: E402
from invgui.core.results import Metrics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="chelsea,coffee")
    ap.add_argument("--layers", default="blocks.2,blocks.5,blocks.11")
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--out", default=str(ROOT / "docs" / "images" / "figure_dinov2.png"))
    args = ap.parse_args()
    sources = [f"sample:{n}" for n in args.images.split(",")]
    layers = args.layers.split(",")
    params = dataclasses.replace(PRESETS.get("fast"), iters=args.iters, size=224, restarts=1)
    cells = [[resize_center_crop(load_image(s), 224)] for s in sources]
    for layer in layers:
        req = RunRequest(model="dinov2_vits14", layer=layer, images=tuple(sources), params=params)
        for source, row, res in zip(sources, cells, results(execute(req)), strict=True):
            m = Metrics.of(res)
            print(f"{layer:>9} {source}: representation error "
                  f"{m.start_representation_error:.3f} -> {m.representation_error:.3f}, PSNR {m.psnr:.2f} dB, "
                  f"{m.seconds:.1f} s")
            row.append(res.images[0])
    sheet = labelled_grid(cells, [s.split(":", 1)[1] for s in sources], ["photo"] + layers, tile=224)
    print(f"wrote {save_sheet(args.out, sheet)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
