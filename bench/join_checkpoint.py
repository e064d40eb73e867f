"""Put a checkpoint that came back from the GPU machine in halves (bench/pretrain_gpu.sh) back together.

    python bench/join_checkpoint.py DIR models/pretrained/galaxalign-tiny-sky-gpu.pt

DIR holds ``visual.pt``, ``rest.pt`` and ``card.json``; the joined checkpoint is written in open_clip's
layout with its card (sha256 of the joined file) beside it, both to temporary names and renamed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from galaxalign.pretrain import write_checkpoint


def join(src: Path, out: Path) -> dict:
    sd = {**torch.load(src / "visual.pt", weights_only=True), **torch.load(src / "rest.pt", weights_only=True)}
    card = json.loads((src / "card.json").read_text())
    card["returned_as"] = ("two halves (the GPU machine returns files of at most 16 MiB), joined by "
                           "bench/join_checkpoint.py")
    write_checkpoint(sd, out, card)
    return json.loads(out.with_suffix(".card.json").read_text())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python bench/join_checkpoint.py DIR OUT.pt")
    c = join(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{sys.argv[2]}: {c['bytes']} bytes, sha256 {c['sha256']}")
