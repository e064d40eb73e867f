"""Does training on the diverse sky generalise? In-domain, cross-renderer, held-out factors, sweeps.

    python bench/sky.py              # main runs and sweeps (about 15 minutes on 2 cores); resumable
    python bench/sky.py --held-out   # and the held-out-factor runs (about 10 minutes more)
    python bench/sky.py --report     # only rewrite the BENCHMARKS section and the sweep plot

Recipes, each trained on a 1,500-galaxy survey (random 80/20 split per seed):

- ``starter`` — ``configs/starter-cpu.yaml``, what ``make run`` trains: CNN tower from our own
  self-supervised checkpoint; ``starter_scratch`` — the same from random weights;
  ``wave1`` — ``configs/tiny-cpu.yaml``, the first starter's recipe (tiny ViT from scratch).
- **main**: ``starter`` and ``starter_scratch`` trained on the diverse sky (3 seeds each), ``wave1``
  on the classic sky (one seed: the first starter); each model tested on its own survey's held-out
  20 %, and on 500 fresh galaxies of each renderer — the nearest thing to an independent simulator
  we have (the real checks are kept outside the team).
- **sweeps**: the starter models on 200 galaxies per point at fixed PSF size, S/N or crowding.
- ``--held-out``: also the held-out factors (:data:`galaxalign.sky.HELD_OUT`), the starter recipe
  trained without one factor's range and tested inside and outside it (one seed).

Every run appends one line to ``bench/results/sky_runs.jsonl``; a run already there is skipped.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from runlog import append_run, mean_std, read_runs, write_section

from galaxalign.data import load_survey
from galaxalign.inference import evaluate_model
from galaxalign.model import load_model
from galaxalign.sky import HELD_OUT, Nuisance
from galaxalign.synth import synth_survey
from galaxalign.train import load_config, train

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "bench" / "out" / "sky"
RUNS = ROOT / "bench" / "results" / "sky_runs.jsonl"
RECIPES = {"starter": ROOT / "configs" / "starter-cpu.yaml", "starter_scratch": ROOT / "configs" / "starter-cpu.yaml",
           "starter_gpu": ROOT / "configs" / "starter-cpu.yaml", "starter_gpu_long": ROOT / "configs" / "starter-cpu.yaml",
           "wave1": ROOT / "configs" / "tiny-cpu.yaml"}
# the recipes' epochs where they differ from today's config: the first starter rows were measured at
# 4 + 12 epochs; ``starter_gpu_long`` is today's config (4 + 36, the rest of the 5-minute budget)
EPOCHS = {k: {"stage2_epochs": 12} for k in ("starter", "starter_scratch", "starter_gpu")}
# the image tower each starter row starts from: the CPU checkpoint (configs/pretrain-cpu.yaml; in git
# history, see models/pretrained/README.md), the GPU one the starter config names now
# (configs/pretrain-gpu.yaml), or random weights
GPU_TOWER = ROOT / "models" / "pretrained" / "galaxalign-tiny-sky-gpu.pt"
TOWERS = {"starter": ROOT / "models" / "pretrained" / "galaxalign-tiny-sky.pt", "starter_gpu": GPU_TOWER,
          "starter_gpu_long": GPU_TOWER, "starter_scratch": None}
LABELS = {"starter": "starter, CPU-pretrained tower", "starter_gpu": "starter, GPU-pretrained tower, 4 + 12 epochs",
          "starter_gpu_long": "starter, GPU-pretrained tower, 4 + 36 epochs",
          "starter_scratch": "starter, random weights", "wave1": "wave-1 recipe"}
# (recipe, training sky, seeds), in order of importance
N_TRAIN, N_TEST, N_SWEEP, SEEDS = 1500, 500, 200, (0, 1, 2)
# the surveys of the main runs (and of bench/adapt.py): name → (galaxies, render seed, sky)
SURVEYS = {"train-diverse": (N_TRAIN, 11, "diverse"), "train-classic": (N_TRAIN, 12, "classic"),
           "test-diverse": (N_TEST, 21, "diverse"), "test-classic": (N_TEST, 22, "classic")}
MAIN = [("starter_gpu", "diverse", SEEDS), ("starter", "diverse", SEEDS), ("starter_scratch", "diverse", SEEDS),
        ("wave1", "classic", (0,)), ("starter_gpu_long", "diverse", SEEDS)]
SWEEPS = {
    "psf_over_hlr": [0.1, 0.4, 1.2],
    "snr": [5.0, 30.0, 400.0],
    "neighbours": [0, 6, 14],
}
HELD = "--held-out" in sys.argv  # the held-out-factor runs (about 10 more minutes) only when asked


def survey(name: str, n: int, seed: int, sky: str = "diverse", nuisance: Nuisance | None = None) -> Path:
    path = OUT / f"{name}.h5"
    if not path.exists():
        synth_survey(path, n=n, size=64, seed=seed, sky=sky, nuisance=nuisance, progress=False)
    return path


def named(name: str) -> Path:
    """One of :data:`SURVEYS`, rendered the first time it is asked for."""
    n, seed, sky = SURVEYS[name]
    return survey(name, n, seed, sky)


def sweep_nuisance(factor: str, value) -> Nuisance:
    if factor == "psf_over_hlr":
        return Nuisance().but(psf_over_hlr=(value, value))
    if factor == "snr":
        return Nuisance().but(snr=(value, value))
    return Nuisance().but(background=(value, value), stars=(value // 3, value // 3))


def record(row: dict) -> None:
    append_run(RUNS, row)
    print(json.dumps(row), flush=True)


def scores(model, path: Path) -> dict:
    ev = evaluate_model(model, load_survey(path))
    return {"accuracy": round(ev["accuracy"], 4), "macro_f1": round(ev["macro_f1"], 4)}


def fit(recipe: str, name: str, train_path: Path, seed: int) -> tuple[object, dict, float]:
    tower = TOWERS.get(recipe, "")
    over = {"model": {"pretrained": str(tower) if tower else None}} if recipe in TOWERS else {}
    over.update(EPOCHS.get(recipe, {}))
    cfg = replace(load_config(RECIPES[recipe], **over), seed=seed, split_seed=seed)
    out = OUT / "models" / f"{name}-s{seed}"
    t0 = time.perf_counter()
    res = train(cfg, train_path, out, show_bar=False)
    return load_model(out), res["metrics"], round(time.perf_counter() - t0, 1)


def run_all() -> None:
    done = read_runs(RUNS)
    tests = {sky: named(f"test-{sky}") for sky in ("diverse", "classic")}
    for seed in SEEDS:
        for recipe, sky, seeds in MAIN:
            key = f"{recipe}-{sky}"
            if (key, seed) in done or seed not in seeds:
                continue
            path = named(f"train-{sky}")
            model, own, secs = fit(recipe, key, path, seed)
            row = {"name": key, "seed": seed, "seconds": secs, "own_accuracy": round(own["accuracy"], 4),
                   "own_macro_f1": round(own["macro_f1"], 4)}
            for tsky, tpath in tests.items():
                row.update({f"{tsky}_{k}": v for k, v in scores(model, tpath).items()})
            if key == "starter-diverse":
                for factor, values in SWEEPS.items():
                    for v in values:
                        p = survey(f"sweep-{factor}-{v}", N_SWEEP, 31, nuisance=sweep_nuisance(factor, v))
                        row[f"sweep_{factor}_{v}"] = scores(model, p)["accuracy"]
            record(row)
    for seed in SEEDS if HELD else ():  # every factor at seed 0 first, so that a cut-short run covers them all
        for factor, (train_nz, test_nz) in HELD_OUT.items():
            key = f"held-{factor}"
            if (key, seed) in done:
                continue
            path = survey(f"train-held-{factor}", N_TRAIN, 13, nuisance=train_nz)
            model, own, secs = fit("starter", key, path, seed)
            out = scores(model, survey(f"test-held-{factor}", N_TEST // 2, 23, nuisance=test_nz))
            record({"name": key, "seed": seed, "seconds": secs, "inside_accuracy": round(own["accuracy"], 4),
                    "outside_accuracy": out["accuracy"], "outside_macro_f1": out["macro_f1"]})


def report() -> str:
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    lines = ["| recipe | trained on | seeds | own test split | diverse test (500) | classic test (500) | "
             "minutes / run |", "|---|---|---:|---:|---:|---:|---:|"]
    for recipe, sky, _ in MAIN:
        rs = [r for r in rows if r["name"] == f"{recipe}-{sky}"]
        if rs:
            lines.append(f"| {LABELS[recipe]} | {sky} sky | {len(rs)} | {mean_std([r['own_accuracy'] for r in rs])} | "
                         f"{mean_std([r['diverse_accuracy'] for r in rs])} | {mean_std([r['classic_accuracy'] for r in rs])} | "
                         f"{np.mean([r['seconds'] for r in rs]) / 60:.1f} |")
    held: dict[str, list[dict]] = {}
    for r in rows:
        if r["name"].startswith("held-"):
            held.setdefault(r["name"][5:], []).append(r)
    if held:
        lines += ["", "| held-out factor | seeds | trained without it, tested inside | tested on it | ratio |",
                  "|---|---:|---:|---:|---:|"]
    for factor, rs in held.items():
        inside = [r["inside_accuracy"] for r in rs]
        outside = [r["outside_accuracy"] for r in rs]
        lines.append(f"| {factor} | {len(rs)} | {mean_std(inside)} | {mean_std(outside)} | "
                     f"{np.mean(outside) / max(np.mean(inside), 1e-9):.2f} |")
    div = [r for r in rows if r["name"] == "starter-diverse"]
    if div:
        lines += ["", "| sweep (starter, CPU-pretrained tower, 200 galaxies per point; values in brackets) | low | middle | high |"]
        lines.append("|---|" + "---:|" * len(SWEEPS["snr"]))
        for factor, values in SWEEPS.items():
            lines.append(f"| {factor} (" + ", ".join(f"{v:g}" for v in values) + ") | " +
                         " | ".join(mean_std([r[f'sweep_{factor}_{v}'] for r in div]) for v in values) + " |")
        _plot(div)
    return "\n".join(lines)


def _plot(div: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    labels = {"psf_over_hlr": "PSF FWHM / half-light radius", "snr": "S/N", "neighbours": "background galaxies"}
    for ax, (factor, values) in zip(axes, SWEEPS.items()):
        acc = np.array([[r[f"sweep_{factor}_{v}"] for v in values] for r in div])
        ax.errorbar(values, acc.mean(0), yerr=acc.std(0, ddof=1) if len(acc) > 1 else None, marker="o", capsize=3)
        ax.axhline(0.1, color="grey", ls=":", lw=1)
        ax.set_xlabel(labels[factor])
        ax.set_xscale("log" if factor != "neighbours" else "linear")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"accuracy (mean ± std, {len(div)} seeds)")
    fig.suptitle("Starter recipe (diverse sky, CPU-pretrained tower): accuracy against one nuisance at a time")
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "sky_sweep.png", dpi=110)


def write_report() -> None:
    table = report()
    write_section(ROOT / "BENCHMARKS.md", "sky-tables", table)
    print(table)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--held-out", action="store_true", help="also the held-out-factor runs")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not a.report:
        run_all()
    write_report()


if __name__ == "__main__":
    main()
