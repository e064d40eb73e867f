"""Is it our trainer or the data that holds FIRST near 0.8? A plain supervised CNN, written outside the
package's trainer, on the same fixed split — one probe per recipe, the setting under test changed
alone.

    python bench/first_recipes.py --tag base                       # the probe's own defaults
    python bench/first_recipes.py --tag cut64 --cut 64 --size 64   # one setting changed
    python bench/first_recipes.py --report                         # rewrite the BENCHMARKS section

The probe: a VGG-style CNN (four stages of two 3×3 convolutions with BatchNorm, widths 32–256, global
average pool, dropout 0.3, 1.2 M parameters), AdamW with a one-cycle schedule, label smoothing 0.1,
batch 32, 60 epochs; augmentation on the fly: any rotation, flips, a 5 % shift (one ``grid_sample``
per batch). Preparation: a centred ``--cut``-px cut-out of the 300-px field resampled to ``--size``
(area), one channel per ``--stretch`` (``linear``, ``sqrt``, ``log``; comma-separated for several).
The epoch is chosen on the valid split; the test split is scored once, with and without the mean over
the 8 quarter turns and flips. Each run appends a line to ``bench/results/first_recipes.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from runlog import append_run, write_section

from galaxalign.data import first_package_dir, load_survey
from galaxalign.equivariant import d4_cnn
from galaxalign.metrics import confusion

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "bench" / "results" / "first_recipes.jsonl"


def stretched(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "sqrt":
        return np.sqrt(x)
    if kind == "log":
        return np.log1p(1000 * x) / np.log(1001)
    if kind == "linear":
        return x
    raise SystemExit(f"--stretch: {kind!r} is not linear, sqrt or log")


def vgg(channels: int, width: int, drop: float) -> nn.Module:
    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    w = width
    return nn.Sequential(block(channels, w), block(w, w), nn.MaxPool2d(2), block(w, 2 * w), block(2 * w, 2 * w),
                         nn.MaxPool2d(2), block(2 * w, 4 * w), block(4 * w, 4 * w), nn.MaxPool2d(2),
                         block(4 * w, 8 * w), block(8 * w, 8 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(drop), nn.Linear(8 * w, 4))


def augment(xb: torch.Tensor, shift: float = 0.05, zoom: float = 0.0) -> torch.Tensor:
    """Any rotation, a flip half the time, a small shift, a zoom by up to ±``zoom``: one affine
    resampling per batch."""
    n = xb.shape[0]
    th = torch.rand(n) * 2 * np.pi
    sc = 1 + (torch.rand(n) * 2 - 1) * zoom
    cos, sin = torch.cos(th) / sc, torch.sin(th) / sc
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    t = (torch.rand(n, 2) * 2 - 1) * shift
    m = torch.stack([torch.stack([cos * flip, -sin, t[:, 0]], 1), torch.stack([sin * flip, cos, t[:, 1]], 1)], 1)
    return F.grid_sample(xb, F.affine_grid(m, xb.shape, align_corners=False), align_corners=False)


def run(a) -> dict:
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(a.threads)
    s = load_survey(first_package_dir() / "galaxy_data_h5.zip")
    split, y = s.catalog["split"].to_numpy(), s.catalog["label"].to_numpy()
    raw = s.raw_images(np.arange(len(s))).astype(np.float32)
    raw = raw[..., 0] if raw.ndim == 4 else raw
    c, h = raw.shape[1] // 2, a.cut // 2
    x = raw[:, c - h:c + h, c - h:c + h] / 255.0
    kinds = a.stretch.split(",")
    X = torch.from_numpy(np.ascontiguousarray(np.stack([stretched(x, k) for k in kinds], 1), np.float32))
    if a.size != a.cut:
        X = F.interpolate(X, size=(a.size, a.size), mode="area" if a.size < a.cut else "bilinear").contiguous()
    tr, va, te = (np.where(split == k)[0] for k in ("train", "valid", "test"))
    Y = torch.from_numpy(y.astype(np.int64))
    net = (d4_cnn(len(kinds), a.width, 4, a.drop) if a.arch == "d4" else
           vgg(len(kinds), a.width, a.drop).to(memory_format=torch.channels_last))
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.wd)
    total = int(np.ceil(len(tr) / a.bs)) * a.epochs  # (the last, partial batch is dropped: ends near, not at, 0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=total, pct_start=0.15)

    def probabilities(idx, tta=False):
        net.eval()
        with torch.no_grad():
            xb = X[idx].contiguous(memory_format=torch.channels_last)
            views = [torch.rot90(xb, k, (2, 3)).flip(3) if f else torch.rot90(xb, k, (2, 3))
                     for k in range(4) for f in (False, True)] if tta else [xb]
            p = sum(net(v).softmax(-1) for v in views) / len(views)
        net.train()
        return p

    best, hist, last, t0 = (-1.0, -1, None), [], [], time.perf_counter()
    for ep in range(a.epochs):
        if a.balanced:  # each class equally often per epoch (valid and test are 50 per class)
            per = len(tr) // 4
            order = np.random.permutation(np.concatenate([
                np.random.choice(tr[y[tr] == k], per, replace=(y[tr] == k).sum() < per) for k in range(4)]))
        else:
            order = np.random.permutation(tr)
        for i in range(0, len(order) - a.bs + 1, a.bs):
            b = order[i:i + a.bs]
            xb, yb = augment(X[b], zoom=a.zoom), F.one_hot(Y[b], 4).float()
            if a.mixup:  # mix pairs of galaxies and their labels (Zhang et al. 2018)
                lam = float(np.random.beta(a.mixup, a.mixup))
                j = torch.randperm(len(b))
                xb, yb = lam * xb + (1 - lam) * xb[j], lam * yb + (1 - lam) * yb[j]
            loss = F.cross_entropy(net(xb.contiguous(memory_format=torch.channels_last)), yb, label_smoothing=a.ls)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched.last_epoch < total - 1:
                sched.step()
        v = float((probabilities(va).argmax(-1) == Y[va]).float().mean())
        hist.append(round(v, 3))
        if ep >= a.epochs - a.last:  # the last epochs' test probabilities, averaged below (no choice on test)
            last.append(probabilities(te))
        if v >= best[0]:
            best = (v, ep, {k: t.clone() for k, t in net.state_dict().items()})
        print(f"epoch {ep + 1}/{a.epochs}: loss {loss.item():.3f}, valid {v:.3f}, {time.perf_counter() - t0:.0f} s",
              flush=True)
    net.load_state_dict(best[2])
    pred = probabilities(te).argmax(-1).numpy()
    cm = confusion(y[te], pred, 4)
    pl = (sum(last) / len(last)).argmax(-1).numpy()
    cml = confusion(y[te], pl, 4)
    return {"tag": a.tag, "seed": a.seed, "cut": a.cut, "size": a.size, "stretch": a.stretch, "epochs": a.epochs,
            "width": a.width, "zoom": a.zoom, "balanced": a.balanced, "arch": a.arch, "mixup": a.mixup,
            "valid": round(best[0], 4), "epoch": best[1] + 1,
            "test": round(float((pred == y[te]).mean()), 4),
            "test_last": round(float((pl == y[te]).mean()), 4), "confusion_last": cml.tolist(), "last": a.last,
            "test_tta": round(float((probabilities(te, True).argmax(-1).numpy() == y[te]).mean()), 4),
            "confusion": cm.tolist(), "valid_curve": hist, "minutes": round((time.perf_counter() - t0) / 60, 2)}


def report() -> str:
    rows = [json.loads(line) for line in RUNS.read_text().splitlines()] if RUNS.exists() else []
    lines = ["| probe | tower | preparation | seed | valid (chosen epoch) | test | test, 8-view mean | "
             "test, last 5 epochs' mean | Bent found | minutes |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        prep = f"cut-out {r['cut']} px → {r['size']} px, {r['stretch']}" + (", balanced epochs" if r["balanced"] else "")
        tower = (f"D4 CNN, width {r['width']}" if r.get("arch") == "d4" else f"CNN, width {r['width']}") + \
            (f", mixup {r['mixup']}" if r.get("mixup") else "") + (f", {r['epochs']} epochs" if r["epochs"] != 60 else "")
        cm = r.get("confusion")  # the first runs did not keep it
        bent = f"{cm[3][3] / max(1, sum(cm[3])):.2f}" if cm else "—"
        last = f"{r['test_last']:.3f}" if "test_last" in r else "—"
        lines.append(f"| {r['tag']} | {tower} | {prep} | {r['seed']} | {r['valid']:.3f} ({r['epoch']}) | {r['test']:.3f} | "
                     f"{r['test_tta']:.3f} | {last} | {bent} | {r['minutes']:.1f} |")
    text = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", "first-recipes", text)
    return text


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", default="base")
    ap.add_argument("--cut", type=int, default=80)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--stretch", default="sqrt")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--ls", type=float, default=0.1)
    ap.add_argument("--drop", type=float, default=0.3)
    ap.add_argument("--bs", type=int, default=32)
    ap.add_argument("--zoom", type=float, default=0.0)
    ap.add_argument("--balanced", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arch", choices=("vgg", "d4"), default="vgg")
    ap.add_argument("--mixup", type=float, default=0.0, help="Beta(α, α) mixing of pairs; 0 = off")
    ap.add_argument("--last", type=int, default=5, help="also score the mean of the last N epochs' probabilities")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    if not a.report:
        row = run(a)
        append_run(RUNS, row)
        print(json.dumps(row))
    print(report())
