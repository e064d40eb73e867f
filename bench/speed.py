"""Training-step and embedding speed, as ratios measured in one run.

    python bench/speed.py

1. Unique text/symbol encoding: per step, each distinct class prompt and symbol of the batch is
   encoded once and gathered to the batch (`encode_batch(unique=True)`), against the naive loop that
   encodes one per sample. Forward + backward + optimiser step on the same batches, the two modes
   interleaved step by step so that machine load hits both alike; medians over the steps.
2. Embedding throughput of `embed_images` (batched, `torch.inference_mode`) against one image at a time.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from galaxalign.data import load_survey
from galaxalign.inference import embed_images
from galaxalign.loss import STAGE1_PAIRS, STAGE2_PAIRS, GalaxAlignLoss
from galaxalign.model import ModelCfg, create_model
from galaxalign.synth import synth_survey
from galaxalign.train import SymbolBank, class_text_for, encode_batch

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "bench" / "out"
BATCH, STEPS = 64, 20


def step_times(model, survey, stage: int) -> dict[bool, list[float]]:
    names, prompts, symbols, _ = class_text_for(survey)
    tokens = model.tokenize(prompts)
    bank = SymbolBank(model, symbols, 8, 0)
    loss_fn = GalaxAlignLoss(STAGE1_PAIRS if stage == 1 else STAGE2_PAIRS)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    times = {True: [], False: []}
    for step in range(STEPS + 2):
        idx = rng.choice(len(survey), BATCH, replace=False)
        x = model.preprocess(survey.images(np.sort(idx)))
        y = torch.as_tensor(survey.labels[np.sort(idx)])
        for unique in ((True, False) if step % 2 else (False, True)):
            t0 = time.perf_counter()
            z = encode_batch(model, x, y, tokens, bank, gen, unique=unique)
            loss = loss_fn(z, z["scale"], y)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step >= 2:  # the first two are warm-up
                times[unique].append(time.perf_counter() - t0)
    return times


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    survey_path = OUT / "speed_survey.h5"
    if not survey_path.exists():
        synth_survey(survey_path, n=1200, size=64, seed=99, progress=False, sky="classic")
    survey = load_survey(survey_path)
    torch.manual_seed(0)
    model = create_model(ModelCfg("galaxalign-tiny"))
    print("## Unique text/symbol encoding per training step\n")
    print(f"galaxalign-tiny, batch {BATCH}, 10 classes, forward + backward + AdamW step, {STEPS} steps per mode, "
          "modes interleaved\n")
    print("| stage | naive: one text + one symbol per sample (ms/step) | unique + gather (ms/step) | speed-up |")
    print("|---|---:|---:|---:|")
    for stage in (1, 2):
        if stage == 2:
            model.begin_stage2()
        t = step_times(model, survey, stage)
        naive, uniq = np.median(t[False]) * 1000, np.median(t[True]) * 1000
        print(f"| {stage} | {naive:.0f} | {uniq:.0f} | {naive / uniq:.2f}× |", flush=True)

    print("\n## Embedding throughput\n")
    print(f"{len(survey)} galaxies, 64 px, galaxalign-tiny, `torch.inference_mode`, {torch.get_num_threads()} threads\n")
    print("| batch size | images / s | vs one at a time |")
    print("|---:|---:|---:|")
    base_rate = None
    model.eval()
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
