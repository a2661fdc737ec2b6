"""``invgui layers MODEL``: a representation's layer tree with output shapes, and its shipped decoders."""

from __future__ import annotations

import argparse
import sys

from .common import Model, add_model_args

NAME = "layers"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="print a representation's layer tree with output shapes")
    add_model_args(p, positional=True)
    p.add_argument("--size", type=int, default=0, help="input side in pixels (default: the model's own)")
    p.add_argument("--depth", type=int, default=None, help="show only this many nesting levels")


def run(args: argparse.Namespace) -> int:
    from ..core import representations as R
    from ..core.methods import decoder as D

    model, note = Model.of(args), ""
    try:
        rep = model.build()
    except R.WeightsNotFoundError as e:
        rep = model.build(weights=None, random_weights=True)   # shapes do not depend on weights
        note = f"note: {e}"
    size = R.check_size(args.size) or rep.input_size
    print(f"{rep.name} — {rep.title}; input {size}×{size}; weights: {rep.weights_info}; "
          f"default layer: {rep.default_layer}")
    if rep.params is not None:
        own = ", ".join(f"{k}={v}" for k, v in rep.describe()["representation_params"].items())
        print(f"parameters: {own} (change with --rep-param NAME=VALUE)"
              + ("" if rep.differentiable else "; not differentiable: invert it with a decoder"))
    flat = rep.layers(size)
    width = max(len("  " * i.depth + i.name + (f" ({', '.join(i.aliases)})" if i.aliases else "")) for i in flat)
    for i in flat:
        if args.depth is not None and i.depth >= args.depth:
            continue
        label = "  " * i.depth + i.name + (f" ({', '.join(i.aliases)})" if i.aliases else "")
        print(f"{label:<{width}}  {i.kind:<24} {i.shape_text()}")
    failed = next((i for i in flat if i.error), None)
    if failed:
        print(f"layers marked 'does not fit' cannot run at {size}×{size}: {failed.error}")
    shipped = [(i.name, path, loss) for i in flat for path, loss in D.shipped_for(rep.name, i.name)]
    if shipped:
        print("shipped decoders (--method decoder|hybrid --decoder NAME; the first for a layer is its default):")
    for layer, path, loss in shipped:
        print(f"  {path.stem:<32} layer {layer}, {loss} loss")
    if note:
        print(note, file=sys.stderr)
    return 0
