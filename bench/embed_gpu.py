"""How fast one GPU embeds a survey with the committed tower: images/s by batch size, fp32 and bf16.

    python bench/embed_gpu.py            # on a CUDA machine (bench/pretrain_gpu.sh's packages)

The images are uint8 stamps already at 64 px, held on the GPU, so what is timed is the model's own
path (``TriModalCLIP.preprocess`` → ``encode_image``, normalised), as ``inference.embed_images`` runs
it batch by batch; reading and preparing a survey's files is not timed. Prints one JSON line per
setting and writes ``$OUT/embed_gpu.json`` when ``OUT`` is set.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from galaxalign.model import ModelCfg, create_model

ROOT = Path(__file__).resolve().parent.parent
TOWER = ROOT / "models" / "pretrained" / "galaxalign-tiny-sky-gpu.pt"
N = 200_000


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    model = create_model(ModelCfg("galaxalign-tiny-rn", norm="group", pretrained=str(TOWER))).to(dev).eval()
    images = torch.randint(0, 256, (N, 64, 64, 3), dtype=torch.uint8, device=dev)
    rows = []
    for precision in ("fp32", "bf16"):
        for batch in (256, 1024, 4096, 16384):
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
                model.encode_image(model.preprocess(images[:batch]), normalize=True)  # warm-up
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for start in range(0, N, batch):
                    model.encode_image(model.preprocess(images[start:start + batch]), normalize=True)
                torch.cuda.synchronize()
                secs = time.perf_counter() - t0
            rows.append({"device": torch.cuda.get_device_name(), "precision": precision, "batch": batch,
                         "images_per_s": round(N / secs), "seconds_per_million": round(1e6 / (N / secs), 1)})
            print(json.dumps(rows[-1]), flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "embed_gpu.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
