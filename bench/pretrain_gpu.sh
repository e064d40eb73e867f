#!/usr/bin/env bash
# Pretrain the image tower on a lent GPU machine (one H100/H200, 16 cores, nothing reachable from it):
# what made models/pretrained/galaxalign-tiny-sky-gpu.pt. Run from the repository root:
#   OUT=bench/out/pretrain-gpu bash bench/pretrain_gpu.sh
# Where the machine lacks packages (galsim, open_clip, lightly, astropy), they come unpacked from
# .devdata/site.tar.xz, which `bash bench/devdata.sh` builds here from PyPI wheels (carry .devdata).
# The rendered pool is sized to what the machine's cores render in RENDER_S seconds; the training lasts MINUTES (the cosine schedule
# fitted to the steps that fit). The checkpoint comes back in two halves (image tower, the rest) because
# the machine returns files of at most 16 MiB; bench/join_checkpoint.py puts them back together.
set -euo pipefail
OUT=${OUT:-bench/out/pretrain-gpu}
RENDER_S=${RENDER_S:-170}
MINUTES=${MINUTES:-5}
MAX_N=${MAX_N:-60000}
MIN_N=${MIN_N:-4000}
CONFIG=${CONFIG:-configs/pretrain-gpu.yaml}
mkdir -p "$OUT"
if [ -f .devdata/site.tar.xz ]; then
  mkdir -p /tmp/site && tar -C /tmp/site -xJf .devdata/site.tar.xz
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, galsim, open_clip, lightly; print('python ok: torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| galsim', galsim.__version__, '| open_clip', open_clip.__version__)"
N=$(python3 - "$RENDER_S" "$MAX_N" "$MIN_N" <<'PY'
import os, sys
from galaxalign.synth import synth_survey
cores = os.cpu_count()
r = synth_survey("/tmp/calibration.h5", n=cores * 40, size=64, seed=99, workers=cores, progress=False)
n = int(min(float(sys.argv[2]), r["galaxies_per_second"] * float(sys.argv[1])) // 1000 * 1000)
print(f"rendering: {r['galaxies_per_second']:.0f} galaxies/s on {cores} cores → pool of {n}", file=sys.stderr)
print(max(n, int(sys.argv[3])))
PY
)
python3 -m galaxalign pretrain --config "$CONFIG" --survey first --n-synthetic "$N" \
  --minutes "$MINUTES" --out /tmp/ck/galaxalign-tiny-sky-gpu.pt --workdir /tmp/pretrain-work 2> "$OUT/progress.log"
python3 - "$OUT" <<'PY'
import shutil, sys, torch
out = sys.argv[1]
sd = torch.load("/tmp/ck/galaxalign-tiny-sky-gpu.pt", weights_only=True)["state_dict"]
torch.save({k: v for k, v in sd.items() if k.startswith("visual.")}, f"{out}/visual.pt")
torch.save({k: v for k, v in sd.items() if not k.startswith("visual.")}, f"{out}/rest.pt")
shutil.copy("/tmp/ck/galaxalign-tiny-sky-gpu.card.json", f"{out}/card.json")
print("halves written")
PY
