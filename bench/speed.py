"""Training-step and embedding speed, as ratios measured in one run.

    python bench/speed.py

1. Unique text/symbol encoding: per step, each distinct class prompt and symbol of the batch is
   encoded once and gathered to the batch, against the naive loop that encodes one per sample.
2. Embedding throughput of `embed_survey` (batched, `torch.inference_mode`) against one image at a time.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from galaxalign.data import load_survey  # noqa: E402
from galaxalign.inference import embed_images  # noqa: E402
from galaxalign.model import load_model  # noqa: E402
from galaxalign.synth import synth_survey  # noqa: E402
from galaxalign.train import load_config, train  # noqa: E402

OUT = ROOT / "bench" / "out"


def epoch_seconds(run: Path) -> list[float]:
    return [json.loads(l)["seconds"] for l in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in l]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    survey_path = OUT / "speed_survey.h5"
    if not survey_path.exists():
        synth_survey(survey_path, n=1200, size=64, seed=99, progress=False)
    survey = load_survey(survey_path)
    base = load_config(ROOT / "configs" / "tiny-cpu.yaml", stage1_epochs=1, stage2_epochs=2, eval_every_stage=False)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for unique in (False, True):
            run = Path(tmp) / f"u{int(unique)}"
            train(replace(base, unique_encode=unique), survey=survey, out_dir=run, show_bar=False)
            rows[unique] = epoch_seconds(run)
        model = load_model(Path(tmp) / "u1")
    steps = len(survey) * 4 // 5 // base.batch_size
    naive, uniq = np.array(rows[False]), np.array(rows[True])
    print("## Unique text/symbol encoding per step\n")
    print(f"galaxalign-tiny, batch {base.batch_size}, 10 classes, {steps} steps per epoch, 1 epoch of stage 1 + 2 of stage 2\n")
    print("| stage | naive per-sample loop (s/epoch) | unique + gather (s/epoch) | speed-up |")
    print("|---|---:|---:|---:|")
    for i, stage in enumerate(["1", "2", "2"]):
        print(f"| {stage} (epoch {i + 1}) | {naive[i]:.2f} | {uniq[i]:.2f} | {naive[i] / uniq[i]:.2f}× |")
    print(f"| all | {naive.sum():.2f} | {uniq.sum():.2f} | {naive.sum() / uniq.sum():.2f}× |\n")

    print("## Embedding throughput\n")
    print(f"{len(survey)} galaxies, 64 px, galaxalign-tiny, `torch.inference_mode`, {torch.get_num_threads()} threads\n")
    print("| batch size | images / s | vs one at a time |")
    print("|---:|---:|---:|")
    base_rate = None
    for bs in (1, 32, 256):
        idx = np.arange(256 if bs == 1 else len(survey))
        embed_images(model, survey, idx[:bs * 2], bs)  # warm-up
        t0 = time.perf_counter()
        embed_images(model, survey, idx, bs)
        rate = len(idx) / (time.perf_counter() - t0)
        base_rate = base_rate or rate
        print(f"| {bs} | {rate:.0f} | {rate / base_rate:.1f}× |")


if __name__ == "__main__":
    main()
