"""Writes tests/data/format1/: a session file and an autosave folder as invgui wrote them before
session format 2 (issue 28), with the code of commit 427e2b2, which still wrote format 1:

    git checkout 427e2b2 -- invgui && python tests/data/format1/make.py && git checkout HEAD -- invgui
"""
from pathlib import Path

from invgui.core.autosave import AutosaveStore
from invgui.core.methods.optimize import PRESETS
from invgui.core.params import to_dict
from invgui.core.request import execute, final_result
from invgui.core.session import Run, Session

out = Path("tests/data/format1")
out.mkdir(parents=True, exist_ok=True)
p = PRESETS.get("fast").__class__(iters=2, size=48, restarts=2, optimizer="adam", lr=0.2, tv_weight=1.0)
opt = Run(method="optimize", model="hog", layer="hog", image="sample:coffee", params=to_dict(p),
          rep_params={"cell": 8, "orientations": 9}, eval_size=48, name="coffee from HOG", id="0000opt00001",
          created=1764000000.0)
opt.result = final_result(execute(opt.request("cpu")))
opt.state = "done"
dec = Run(method="decoder", model="hog", layer="hog", image="sample:chelsea", decoder="hog", size=64, eval_size=64,
          framing="fit", id="0000dec00002", created=1764000001.0)
dec.result = final_result(execute(dec.request("cpu")))
dec.state = "done"
hyb = Run(method="hybrid", model="hog", layer="hog", image="sample:astronaut", params=to_dict(p), decoder="hog",
          size=48, id="0000hyb00003", created=1764000002.0)
bad = Run(method="optimize", model="efficientnet_lite0", layer="blocks.3", image="/nowhere/cat.png",
          params=to_dict(PRESETS.get("mv2016")), state="failed", message="cannot read /nowhere/cat.png",
          id="0000bad00004", created=1764000003.0)
s = Session(runs=[opt, dec, hyb, bad])
s.save(out / "session.invgui")
AutosaveStore(folder=out / "autosave").write(s)
print(sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()))
print(opt.result.metrics["representation_error"], dec.result.metrics["representation_error"])
