#!/usr/bin/env bash
# Train the full-width VGG-FER recipe on a GPU machine in about 8 minutes and leave best.pt under $OUT.
#
#   scripts/train_gpu.sh [extra flags of python -m moodstream.classifier.training.gpu]
#
# Runs from the repository root. Needs a Python with torch (CUDA build), numpy, opencv and pydantic
# (PYTHON, default python3) and ../shared/data/fer2013/fer2013-train-publictest.tar.gz (unpacked to
# /tmp/fer2013 when absent). Output: $OUT/gpu-run/{best.pt,history.jsonl,train.log} ($OUT defaults to
# /tmp). Bring best.pt back and export it here:
#   python -m moodstream.classifier.training export best.pt classifier/models --name NAME \
#       --calibrate /tmp/fer2013/validation
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp}
DATA=${FER_DIR:-/tmp/fer2013}
TARBALL=../shared/data/fer2013/fer2013-train-publictest.tar.gz
if [[ ! -d $DATA/train ]]; then
    mkdir -p "$DATA" && tar -xzf "$TARBALL" -C "$DATA"
fi
"$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU visible to torch"; print(torch.cuda.get_device_name(0))'
mkdir -p "$OUT/gpu-run"
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} timeout 560 "$PYTHON" -m moodstream.classifier.training.gpu \
    --data "$DATA" --out-dir "$OUT/gpu-run" --device cuda "$@" 2>&1 | tee "$OUT/gpu-run/train.log"
