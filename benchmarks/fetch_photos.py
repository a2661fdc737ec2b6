"""Rebuild the 200 real photographs the shipped decoders are trained and measured on, from Debian.

    python benchmarks/fetch_photos.py --out ~/invgui-photos [--deb gcompris-qt-data_3.1-2_all.deb]

On a Debian-based machine (apt-get and dpkg-deb; the .deb can also be given): downloads
``gcompris-qt-data`` 3.1-2, unpacks it, reads the Qt resource bundles ``categorization``,
``erase``, ``explore_monuments``, ``explore_world_animals`` and ``explore_farm_animals`` with
``QResource`` and writes the 200 photos listed in ``benchmarks/photos.sha256`` under the names
the set uses (bundle, then the path inside it, with "-" for "/"), each checked against its
SHA-256 — the same bytes as the folder the project trained on.  The package's ``copyright``
file, which gives each photo's author and licence (CC-BY, CC-BY-SA, GPL-3+, public domain), is
written beside them as ``COPYRIGHT.debian``.  Any other folder of photos works as well: every
script takes ``--data`` / ``--photos``; this one only makes the project's figures reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE, VERSION = "gcompris-qt-data", "3.1-2"
# bundle → the prefix of its photos' names in the set
BUNDLES = {"categorization": "categorization", "erase": "erase", "explore_monuments": "monuments",
           "explore_world_animals": "world_animals", "explore_farm_animals": "farm_animals"}
LIST = Path(__file__).with_name("photos.sha256")


def set_name(prefix: str, resource: str) -> str:
    """The set's name of a photo at ``resource`` (a path inside a bundle): its prefix, then the path
    below ``resource/`` (without a leading ``images/`` or ``animals/``) with "-" for "/"."""
    rel = resource.split("/resource/", 1)[1]
    for strip in ("images/", "animals/"):
        rel = rel.removeprefix(strip)
    return f"{prefix}-{rel.replace('/', '-')}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the folder to write the photos to")
    ap.add_argument("--deb", default="", help=f"{PACKAGE}_{VERSION}_all.deb already downloaded")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QDirIterator, QFile, QResource

    wanted = dict(reversed(line.split()) for line in LIST.read_text().splitlines() if line.strip())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="invgui-photos-") as tmp:
        deb = Path(args.deb) if args.deb else None
        if deb is None:
            subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=tmp, check=True)
            deb = next(Path(tmp).glob(f"{PACKAGE}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        root = Path(tmp) / "x" / "usr" / "share"
        app = QCoreApplication(sys.argv[:1])                 # QResource needs no more than this
        written = 0
        for bundle, prefix in BUNDLES.items():
            mount = f"/{bundle}"
            if not QResource.registerResource(str(root / "gcompris-qt" / "rcc" / f"{bundle}.rcc"), mount):
                raise SystemExit(f"{deb}: no Qt resource bundle {bundle}.rcc")
            it = QDirIterator(f":{mount}", QDirIterator.IteratorFlag.Subdirectories)
            while it.hasNext():
                path = it.next()
                if not path.endswith(".webp") or "/resource/" not in path:
                    continue
                name = set_name(prefix, path)
                if name not in wanted:
                    continue
                f = QFile(path)
                f.open(QFile.OpenModeFlag.ReadOnly)
                data = bytes(f.readAll().data())
                f.close()
                if hashlib.sha256(data).hexdigest() != wanted[name]:
                    raise SystemExit(f"{name}: not the bytes the project's set holds (another package version?)")
                (out / name).write_bytes(data)
                written += 1
        del app
        shutil.copyfile(root / "doc" / PACKAGE / "copyright", out / "COPYRIGHT.debian")
    missing = sorted(set(wanted) - {p.name for p in out.glob("*.webp")})
    if missing:
        raise SystemExit(f"{len(missing)} photos of the list were not in the package: {', '.join(missing[:5])}")
    print(f"wrote {written} photos (every one checked against {LIST.name}) and COPYRIGHT.debian to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
