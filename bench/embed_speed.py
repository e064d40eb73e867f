"""Embedding at this machine's limit: fp32 against bf16 autocast, by batch size, against the measured
matrix-multiply peak, with the change in accuracy.

    python bench/sky.py            # first: the starter models and surveys this script reads
    python bench/embed_speed.py

The model is the starter from the GPU-pretrained tower (``bench/out/sky/models/starter_gpu-diverse-s0``,
the CNN tower at 64 px); images/s over its 1,500-galaxy training survey, accuracy on the 500 fresh
diverse-sky galaxies. FLOPs per image come from ``torch.utils.flop_counter``; the peak is a 2048³
matrix product in the same precision and thread count, in the same run. int8: PyTorch's static
post-training quantisation in FX graph mode (the x86 backend, oneDNN/FBGEMM kernels) of the
convolutional trunk, calibrated on 512 of the training survey's galaxies, the attention pool left in
fp32 — measured here, not offered by the product (see BENCHMARKS.md for why). Writes
``bench/results/embed_speed.json`` and the table in BENCHMARKS.md.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from runlog import write_section

from galaxalign.data import load_survey
from galaxalign.inference import class_probabilities, embed_images
from galaxalign.model import cpu_has_bf16, load_model

ROOT = Path(__file__).resolve().parent.parent
SKY = ROOT / "bench" / "out" / "sky"
RESULTS = ROOT / "bench" / "results" / "embed_speed.json"
BATCHES = (64, 256, 1024)


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def flops_per_image(model, size: int, batch: int = 64) -> float:
    x = torch.rand(batch, 3, size, size)
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        model.encode_image(x)
    return fc.get_total_flops() / batch


def images_per_second(model, survey, batch: int, precision: str) -> float:
    idx = np.arange(len(survey))
    embed_images(model, survey, idx[:batch], batch, precision=precision)  # warm-up
    t0 = time.perf_counter()
    embed_images(model, survey, idx, batch, precision=precision)
    return len(idx) / (time.perf_counter() - t0)


def int8_encoder(model, calibration: np.ndarray):
    """An image encoder whose convolutional trunk runs in int8 (static quantisation, x86 backend)."""
    import copy

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    visual = model.clip.visual

    class Trunk(torch.nn.Module):
        def __init__(self, v):
            super().__init__()
            self.v = v

        def forward(self, x):
            v = self.v
            return v.layer4(v.layer3(v.layer2(v.layer1(v.stem(x)))))

    x = model.preprocess(calibration)
    prepared = prepare_fx(Trunk(copy.deepcopy(visual)).eval(), get_default_qconfig_mapping("x86"),
                          example_inputs=(x[:8],))
    with torch.inference_mode():
        for i in range(0, len(x), 64):
            prepared(x[i:i + 64])
    trunk = convert_fx(prepared)

    @torch.inference_mode()
    def encode(survey, batch: int = 256) -> np.ndarray:
        out = [torch.nn.functional.normalize(visual.attnpool(trunk(model.preprocess(im))), dim=-1).numpy()
               for _, im in survey.iter_batches(batch, np.arange(len(survey)))]
        return np.concatenate(out)
    return encode


def main() -> None:
    model_dir = SKY / "models" / "starter_gpu-diverse-s0"
    if not model_dir.exists():
        raise SystemExit(f"{model_dir}: not there; run `python bench/sky.py` first")
    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model(model_dir)
    train, test = load_survey(SKY / "train-diverse.h5"), load_survey(SKY / "test-diverse.h5")
    # the stored images are already at the model's size: preparation and decoding are not what is timed
    gflop = flops_per_image(model, model.image_size) / 1e9
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows = []
    for precision in ("fp32", "bf16"):
        for b in BATCHES:
            ips = images_per_second(model, train, b, precision)
            rows.append({"precision": precision, "batch": b, "images_per_s": round(ips, 1),
                         "gflops": round(ips * gflop, 1), "of_peak": round(ips * gflop / peaks[precision], 3)})
            print(rows[-1], flush=True)
    int8 = int8_encoder(model, train.images(np.arange(min(512, len(train)))))
    int8(train)  # warm-up
    t0 = time.perf_counter()
    int8(train)
    ips = len(train) / (time.perf_counter() - t0)
    rows.append({"precision": "int8", "batch": 256, "images_per_s": round(ips, 1), "gflops": round(ips * gflop, 1),
                 "of_peak": None})
    print(rows[-1], flush=True)
    emb = {p: embed_images(model, test, None, 256, precision=p) for p in ("fp32", "bf16")}
    emb["int8"] = int8(test)
    pred = {p: class_probabilities(model, e).argmax(1) for p, e in emb.items()}
    labels = test.labels
    quality = {"accuracy_fp32": round(float((pred["fp32"] == labels).mean()), 4),
               "accuracy_bf16": round(float((pred["bf16"] == labels).mean()), 4),
               "same_prediction": round(float((pred["fp32"] == pred["bf16"]).mean()), 4),
               "mean_cosine_fp32_bf16": round(float((emb["fp32"] * emb["bf16"]).sum(1).mean()), 5),
               "accuracy_int8": round(float((pred["int8"] == labels).mean()), 4),
               "same_prediction_int8": round(float((pred["fp32"] == pred["int8"]).mean()), 4),
               "mean_cosine_fp32_int8": round(float((emb["fp32"] * emb["int8"]).sum(1).mean()), 5)}
    out = {"machine": f"{os.cpu_count()} cores, native bf16: {cpu_has_bf16()}", "gflop_per_image": round(gflop, 4),
           "peak_gflops": {k: round(v, 1) for k, v in peaks.items()}, "rows": rows, "quality": quality}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    write_report(out)


def write_report(r: dict) -> None:
    lines = [f"Tower: `galaxalign-tiny-rn` at 64 px, {r['gflop_per_image']:.3f} GFLOP per image; matrix-multiply "
             f"peak measured in the same run: {r['peak_gflops']['fp32']:.0f} GFLOP/s fp32, "
             f"{r['peak_gflops']['bf16']:.0f} GFLOP/s bf16 ({r['machine']}).", "",
             "| precision | batch | images / s | GFLOP/s | of the peak |", "|---|---:|---:|---:|---:|"]
    base = next(x["images_per_s"] for x in r["rows"] if x["precision"] == "fp32" and x["batch"] == 256)
    for x in r["rows"]:
        peak = f"{100 * x['of_peak']:.0f} %" if x.get("of_peak") is not None else "–"
        lines.append(f"| {x['precision']} | {x['batch']} | {x['images_per_s']:.0f} ({x['images_per_s'] / base:.2f}×) | "
                     f"{x['gflops']:.0f} | {peak} |")
    q = r["quality"]
    lines += ["", f"Accuracy on 500 fresh diverse-sky galaxies: fp32 {q['accuracy_fp32']:.3f}, bf16 "
                  f"{q['accuracy_bf16']:.3f}; the same class for {100 * q['same_prediction']:.1f} % of galaxies; "
                  f"mean cosine between the two embeddings {q['mean_cosine_fp32_bf16']:.4f}."]
    if "accuracy_int8" in q:
        lines[-1] += (f" int8: accuracy {q['accuracy_int8']:.3f}, the fp32 class for "
                      f"{100 * q['same_prediction_int8']:.1f} % of galaxies, mean cosine {q['mean_cosine_fp32_int8']:.4f}.")
    body = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", "embed-speed", body)
    print(body)


if __name__ == "__main__":
    main()
