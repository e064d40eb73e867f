"""The paper's Tables 2–5 on the embedded synthetic survey, from three image towers (below), on the CPU.

    python bench/paper_tables.py                 # all runs × 3 seeds (about an hour on 2 cores)
    python bench/paper_tables.py --report        # only rewrite the tables from finished runs
    python bench/paper_tables.py --tower pretrained           # Table 2/3 from our pretrained CNN tower
    python bench/paper_tables.py --tower pretrained-diverse   # the same and ablations, on the diverse sky

Towers: ``vit-scratch`` (the first tables: the tiny ViT from random weights, ``configs/tiny-cpu.yaml``,
on 2,000 classic-sky galaxies), ``pretrained`` (the starter's CNN tower ``galaxalign-tiny-rn`` from our
SimCLR checkpoint, ``configs/starter-cpu.yaml`` with the paper's loss targets, on the same survey) and
``pretrained-diverse`` (the same tower on 2,000 galaxies of the diverse sky, where it is not at its
ceiling). Every variant gets the same 3 + 6 epochs.

Every run appends one line to ``bench/results/paper_runs.jsonl`` (``paper_runs_<tower>.jsonl`` for
the other towers); a run already there is skipped, so an interrupted benchmark picks up where it
stopped. Runs go in order of importance — the main comparison for every seed first, then the
ablations. The tables (mean ± std over seeds) are written to ``bench/out/<section>.md`` and into
BENCHMARKS.md; for the first tower also the t-SNE figure (paper Fig. 4: ours vs bi-modal CLIP),
``docs/tsne_ours_vs_clip.png``.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from runlog import append_run, read_runs, write_section

from galaxalign.baselines import linear_probe, tower_features, train_supervised
from galaxalign.data import load_survey
from galaxalign.model import create_model, load_model
from galaxalign.synth import synth_survey
from galaxalign.train import load_config, resolve_split, train

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "results"
SURVEY = OUT / "paper_survey.h5"
N_GALAXIES, SEEDS = 2000, (0, 1, 2)
EPOCHS = dict(stage1_epochs=3, stage2_epochs=6)

# name → training overrides (None: not a contrastive run)
CONTRASTIVE = {
    "ours": {},
    "clip": {"variant": "clip"},
    "v1": {"variant": "v1"},
    "v2": {"variant": "v2"},
    "v3": {"variant": "v3"},
    "no_text": {"variant": "no_text"},
    "loss_no_img_txt": {"stage2_pairs": ("img_sym", "sym_txt")},
    "loss_no_img_sym": {"stage2_pairs": ("img_txt", "sym_txt")},
    "loss_no_sym_txt": {"stage2_pairs": ("img_txt", "img_sym")},
    "class_aware": {"class_aware": True},
}
KEYS = ("accuracy", "macro_f1", "map_at_5", "map")


@dataclass(frozen=True)
class Tower:
    config: str  # under configs/
    overrides: dict  # on top of the config and EPOCHS
    runs: list | None  # which rows, in PRIORITY order (None: all)
    tag: str = ""  # names its run log, run folders and BENCHMARKS.md section ("": the first tables)
    sky: str = "classic"  # the survey: 2,000 galaxies of this renderer, seed 2025

    @property
    def marker(self) -> str:  # the BENCHMARKS.md section
        return "paper-tables" + (f"-{self.tag}" if self.tag else "")

    @property
    def stem(self) -> str:  # in the names of its run log and run folders
        return self.tag.replace("-", "_")


MAIN = ["ours", "clip", "supervised", "probe_init", "probe_ours"]
TOWERS = {
    "vit-scratch": Tower("tiny-cpu.yaml", {}, None),
    # the starter's CNN from our SimCLR checkpoint, the paper's loss targets (class_aware off) so that
    # the rows mean what they mean above; on the classic sky (as the first tables) and on the diverse sky
    "pretrained": Tower("starter-cpu.yaml", {"class_aware": False}, MAIN, "pretrained"),
    "pretrained-diverse": Tower("starter-cpu.yaml", {"class_aware": False},
                                MAIN + ["v2", "loss_no_img_sym", "loss_no_sym_txt", "class_aware"],
                                "pretrained-diverse", "diverse"),
}
TOWER = TOWERS["vit-scratch"]


def survey_path() -> Path:
    return SURVEY if TOWER.sky == "classic" else OUT / f"paper_survey_{TOWER.sky}.h5"


def runs_file() -> Path:  # committed: the tables are rebuilt from it
    return RESULTS / (f"paper_runs_{TOWER.stem}.jsonl" if TOWER.tag else "paper_runs.jsonl")


def run_dir(name: str, seed: int) -> Path:
    return OUT / "runs" / (f"{TOWER.stem}-{name}-{seed}" if TOWER.tag else f"{name}-{seed}")


def done() -> dict:
    return read_runs(runs_file())


def record(name: str, seed: int, metrics: dict, seconds: float) -> None:
    row = {"name": name, "seed": seed, "seconds": round(seconds, 1), **{k: metrics.get(k) for k in KEYS},
           **{k: metrics[k] for k in ("accuracy_symbol", "accuracy_fused") if k in metrics}}
    append_run(runs_file(), row)
    print(f"{name:18s} seed {seed}: " + "  ".join(f"{k} {row[k]:.4f}" for k in KEYS if row[k] is not None)
          + f"  ({seconds:.0f} s)", flush=True)


# the order runs are made in: the main comparison for all seeds first, ablations after
PRIORITY = ["ours", "clip", "supervised", "probe_init", "probe_ours", "class_aware", "v1", "v2", "v3", "no_text",
            "loss_no_img_txt", "loss_no_img_sym", "loss_no_sym_txt", "supervised_focal"]


def run_one(name: str, seed: int, survey, base) -> None:
    import torch

    cfg = replace(base, seed=seed, split_seed=seed)
    t0 = time.perf_counter()
    if name in CONTRASTIVE:
        res = train(replace(cfg, eval_every_stage=False, **CONTRASTIVE[name]), survey=survey,
                    out_dir=run_dir(name, seed), show_bar=False)
        metrics = res["metrics"]
    elif name == "supervised":
        metrics = train_supervised(cfg, survey)
    elif name == "supervised_focal":
        metrics = train_supervised(cfg, survey, focal_gamma=2.0, class_weights=True)
    else:  # linear probes: on the initial (random) tower, or on Ours' trained tower of the same seed
        torch.manual_seed(seed)
        if name == "probe_ours" and not (run_dir("ours", seed) / "model.pt").exists():
            return
        m = create_model(cfg.model) if name == "probe_init" else load_model(run_dir("ours", seed))
        tr, _, te = resolve_split(survey, cfg)  # the survey's own split if it has one
        f_tr = tower_features(m.clip.visual, m.preprocess, survey, tr)
        f_te = tower_features(m.clip.visual, m.preprocess, survey, te)
        metrics = linear_probe(f_tr, survey.labels[tr], f_te, survey.labels[te], survey.class_names)
    record(name, seed, metrics, time.perf_counter() - t0)


def run_all() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not survey_path().exists():
        synth_survey(survey_path(), n=N_GALAXIES, size=64, seed=2025, sky=TOWER.sky)
    survey = load_survey(survey_path())
    base = load_config(ROOT / "configs" / TOWER.config, **EPOCHS, **TOWER.overrides)
    for name in TOWER.runs or PRIORITY:
        for seed in SEEDS:
            if (name, seed) not in done():
                run_one(name, seed, survey, base)


LABELS = {
    "ours": "Ours (GalaxAlign, tri-modal, 2 stages)", "clip": "CLIP fine-tuning (bi-modal, no symbols)",
    "supervised": "Image-only supervised (CE)", "supervised_focal": "Image-only supervised (focal + class weights)",
    "probe_init": "Linear probe, frozen initial tower", "probe_ours": "Linear probe on Ours' frozen tower",
    "v1": "Ours_v1 (stage 1 warm-up only)", "v2": "Ours_v2 (stage 2 only)", "v3": "Ours_v3 (stage 1 only, full length)",
    "no_text": "w/o text (image–symbol only)", "loss_no_img_txt": "Loss w/o text–image",
    "loss_no_img_sym": "Loss w/o symbol–image", "loss_no_sym_txt": "Loss w/o text–symbol",
    "class_aware": "Ours + class-aware targets",
}
TABLES = [
    ("Table 2/3 — classification and similarity search", ["ours", "clip", "supervised", "supervised_focal",
                                                           "probe_init", "probe_ours"]),
    ("Table 4 — training process", ["clip", "v1", "v2", "v3", "ours"]),
    ("Table 5 — modalities and loss terms", ["clip", "no_text", "loss_no_img_txt", "loss_no_img_sym",
                                             "loss_no_sym_txt", "ours"]),
    ("Loss targets — paper (one positive per row) vs class-aware", ["ours", "class_aware"]),
]


def report() -> str:
    runs = done()
    lines = []
    have = {n for n, _ in runs}
    level = "####" if TOWER.tag else "###"  # the other towers' tables are subsections of the first ones
    for title, names in TABLES:
        if not have & (set(names) - {"ours", "clip"}):  # a table of only the main pair says nothing new
            continue
        lines += [f"{level} {title}", "", "| method | seeds | accuracy | macro-F1 | mAP@5 | mAP |", "|---|---:|---:|---:|---:|---:|"]
        for name in names:
            rows = [r for (n, _), r in sorted(runs.items()) if n == name]
            if not rows:
                continue
            cells = []
            for k in KEYS:
                v = np.array([r[k] for r in rows if r[k] is not None], float)
                cells.append("—" if not len(v) else f"{v.mean():.4f}" if len(v) == 1 else
                             f"{v.mean():.4f} ± {v.std(ddof=1):.4f}")
            lines.append(f"| {LABELS[name]} | {len(rows)} | " + " | ".join(cells) + " |")
        lines.append("")
    text = "\n".join(lines)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{TOWER.marker}.md").write_text(text)
    # keep BENCHMARKS.md in step: its tables live between two markers
    bm = ROOT / "BENCHMARKS.md"
    write_section(bm, TOWER.marker, text)
    return text


def tsne_figure() -> None:
    """Paper Fig. 4 on our data: t-SNE of test-set embeddings, ours vs bi-modal CLIP (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from galaxalign.inference import embed_images
    from galaxalign.projection import project

    survey = load_survey(SURVEY)
    _, _, te = resolve_split(survey, load_config(ROOT / "configs" / "tiny-cpu.yaml"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    cmap = plt.get_cmap("tab10")
    for ax, name, title in zip(axes, ("ours", "clip"), ("GalaxAlign (ours)", "CLIP fine-tuning (no symbols)")):
        path = run_dir(name, 0)
        if not (path / "model.pt").exists():
            return
        xy = project(embed_images(load_model(path), survey, te), "tsne")
        for c, cname in enumerate(survey.class_names):
            m = survey.labels[te] == c
            ax.scatter(xy[m, 0], xy[m, 1], s=7, color=cmap(c), label=cname)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([])
    axes[1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2)
    fig.tight_layout()
    (ROOT / "docs").mkdir(exist_ok=True)
    fig.savefig(ROOT / "docs" / "tsne_ours_vs_clip.png", dpi=110)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", action="store_true", help="only write the tables and figure from finished runs")
    ap.add_argument("--tower", choices=sorted(TOWERS), default="vit-scratch",
                    help="which image tower every variant starts from (module docstring)")
    a = ap.parse_args()
    TOWER = TOWERS[a.tower]
    if not a.report:
        run_all()
    print(report())
    if a.tower == "vit-scratch":
        tsne_figure()
