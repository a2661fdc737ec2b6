"""``invgui features IMAGE``: Φ0 of an image at a layer, with metadata, to .pt or .npy (and a
picture of hand-crafted features)."""

from __future__ import annotations

import argparse

from .common import DEFAULT_IMAGE, Model, add_fit_arg, add_model_args, check_destinations, pick_device

NAME = "features"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="write Φ0 of an image at a layer, with metadata, to .pt or .npy")
    p.add_argument("image", nargs="?", default=DEFAULT_IMAGE, help="image file or sample:NAME")
    add_model_args(p)
    p.add_argument("--layer", "-l", default=None, help="layer (default: the model's mid-depth layer)")
    p.add_argument("--size", type=int, default=0, help="input side in pixels (default: the model's own)")
    add_fit_arg(p)
    p.add_argument("--out", "-o", required=True, help="feature file, .pt (with metadata) or .npy")
    p.add_argument("--picture", metavar="PNG", help="also draw the features (HOG glyphs, SIFT keypoints, "
                   "LBP pattern map) into this PNG (hand-crafted representations)")


def run(args: argparse.Namespace) -> int:
    from ..core import features_io
    from ..core import representations as R
    from ..core.files import FileSet, save_png
    from ..core.images import frame, load_image

    features_io.check_name(args.out)
    rep = Model.of(args).build()
    check_destinations([args.out] + ([args.picture] if args.picture else []))
    framing = "fit" if args.fit else "crop"
    image = frame(load_image(args.image), framing)
    ff = features_io.compute(rep, image, args.layer, args.size, pick_device("auto"))
    visual = None
    if args.picture:
        visual = R.feature_picture(rep, image, args.size)
        if visual is None:
            raise R.RepresentationError(f"{rep.name} has no picture of its features (only hand-crafted "
                                        "representations draw themselves)")
    with FileSet():                           # the features and their picture, or neither
        path = features_io.save(ff, args.out, image=args.image, framing=framing)
        if visual is not None:
            picture = save_png(args.picture, visual)
    print(f"wrote {path}: {rep.name} {ff.meta['layer']} features {'×'.join(map(str, ff.features.shape))} "
          f"at {ff.meta['input_size']}×{ff.meta['input_size']}")
    if visual is not None:
        print(f"wrote {picture}")
    return 0
