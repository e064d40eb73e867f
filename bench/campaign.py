"""Simulated campaigns through the real loop (galaxalign.simulate): learning curves per queue strategy
and retirement rule, the votes each needs to reach a target, and the anchoring estimate against the
habit given to the simulated volunteers.

    python bench/campaign.py            # every variant × 3 seeds on a 1,000-galaxy diverse sky (~25 min)
    python bench/campaign.py --report   # only rewrite the table and the figure from finished runs
    python bench/campaign.py --setting sky-long     # random, entropy, model as 2 volunteers: 3,000 votes
    python bench/campaign.py --setting first        # the same three on the real FIRST radio galaxies
    python bench/campaign.py --keep anchoring_0.6   # one campaign kept for the screenshots (~1 min)
    python bench/campaign.py --loop-figure          # issue 24's curves, sky and FIRST side by side

Each campaign: a fresh workspace, the survey registered with the flat workflow and 10 % of its labels
known (the experts' seed set, 3 % of all as gold), 7 simulated volunteers (2 skilled, 3 average, 1
careless, 1 spammer) taking a shown proposal with probability 0.3, a 10 % blind control, 5 rounds of
180 votes, each followed by the real re-training job on every label so far (the starter recipe from
our pretrained tower, 2 + 8 epochs, the campaign's seed as training seed). Per seed, a **reference** model trained the same way on every
training galaxy's true label gives the ceiling. The anchoring variants open the proposal gate (every
proposal shown but the blind ones) and play one round of 600 votes at habits 0.3 and 0.6.

Every campaign appends one line to ``bench/results/campaign_runs.jsonl``; the table goes to
BENCHMARKS.md, the figure to ``docs/campaign_curves.png``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from runlog import mean_std, read_runs, write_section

from galaxalign.data import first_package_dir, load_survey
from galaxalign.importer import import_path
from galaxalign.jobs import retrain
from galaxalign.simulate import CampaignCfg, run_campaign
from galaxalign.store import list_surveys, open_store, register_survey
from galaxalign.surveys import open_survey
from galaxalign.synth import synth_survey
from galaxalign.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "campaign"
RESULTS = ROOT / "bench" / "results"
SEEDS = (0, 1, 2)
N_GALAXIES = 1000
RETRAIN = {"config": str(ROOT / "configs" / "starter-cpu.yaml"), "stage1_epochs": 2, "stage2_epochs": 8,
           "from_scratch": True}
OPEN_GATE = {"confidence_floor": 0.0, "ood_max": 1e9}
# name → CampaignCfg fields; the learning-curve variants first, then the anchoring checks
VARIANTS = {
    "random": {"strategy": "random"},
    "entropy": {"strategy": "entropy"},
    "margin": {"strategy": "margin"},
    "disagreement": {"strategy": "disagreement"},
    "entropy_model_k2": {"strategy": "entropy", "retirement": {"model_votes": 2.0}},
    "entropy_skill": {"strategy": "entropy", "retirement": {"method": "skill"}},
    # every vote teaches (issue 24): vote-count training, + the fast refresh every 50 votes, + the BALD
    # queue on the refreshed ensemble, + FixMatch on the galaxies nobody voted on yet
    "votes": {"strategy": "random", "learn_from": "votes"},
    "votes_refresh": {"strategy": "random", "learn_from": "votes", "refresh_every": 50},
    "votes_refresh_bald": {"strategy": "bald", "learn_from": "votes", "refresh_every": 50},
    "votes_refresh_bald_semi": {"strategy": "bald", "learn_from": "votes", "refresh_every": 50, "semi": True},
    # the tower trained once, before the votes: only the refresh (seconds) learns from them
    "refresh_only": {"strategy": "random", "refresh_every": 50, "retrain_rounds": False},
    "refresh_only_bald": {"strategy": "bald", "refresh_every": 50, "retrain_rounds": False},
    "anchoring_0.3": {"strategy": "entropy", "anchoring": 0.3, "gate": OPEN_GATE, "rounds": 1, "votes_per_round": 600},
    "anchoring_0.6": {"strategy": "entropy", "anchoring": 0.6, "gate": OPEN_GATE, "rounds": 1, "votes_per_round": 600},
}
THREE = ["random", "entropy", "entropy_model_k2"]
LOOP = ["votes", "votes_refresh", "votes_refresh_bald", "votes_refresh_bald_semi", "refresh_only", "refresh_only_bald"]
# --setting: the survey, the campaign's length, the variants, and where the results go
SETTINGS = {
    "sky": {"survey": "sky", "rounds": 5, "votes": 180, "variants": [v for v in VARIANTS if v not in LOOP], "runs": "campaign_runs.jsonl",
            "section": "campaign-tables", "figure": "campaign_curves.png", "title": "the diverse sky, 1,000 galaxies"},
    "sky-long": {"survey": "sky", "rounds": 6, "votes": 500, "variants": THREE + LOOP, "runs": "campaign_long_runs.jsonl",
                 "section": "campaign-long-tables", "figure": "campaign_curves_long.png",
                 "title": "the diverse sky, 1,000 galaxies, 3,000 votes"},
    "first": {"survey": "first", "rounds": 5, "votes": 180, "variants": THREE + LOOP, "runs": "campaign_first_runs.jsonl",
              "section": "campaign-first-tables", "figure": "campaign_curves_first.png",
              "title": "FIRST radio galaxies (2,158, real)"},
}
S = SETTINGS["sky"]


def curves() -> list[str]:
    return [v for v in S["variants"] if not v.startswith("anchoring")]


def survey_file() -> Path:
    path = OUT / f"survey-{N_GALAXIES}.h5"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        synth_survey(path, n=N_GALAXIES, size=64, seed=41)
    return path


def first_survey():
    """The FIRST radio galaxies as `galaxalign import` stores them (preparation detected, label set, fixed
    split), imported once into a cache workspace."""
    cache = Workspace(OUT / "first-cache")
    store = open_store(cache.create().database_url)
    if not any(r.name == "first" for r in list_surveys(store)):
        import_path(store, cache, first_package_dir() / "galaxy_data_h5.zip", "first", progress=False)
    survey = open_survey(store, "first").survey
    store.dispose()
    return survey


def _workspace(name: str, seed: int, known: float):
    root = OUT / f"ws-{S['survey']}-{name}-{seed}"
    shutil.rmtree(root, ignore_errors=True)
    ws = Workspace(root).create()
    store = open_store(ws.database_url)
    survey = first_survey() if S["survey"] == "first" else load_survey(survey_file())
    register_survey(store, survey, "sim", workflow="flat", known_fraction=known, gold_fraction=0.03, seed=seed)
    return root, ws, store


def reference(seed: int) -> dict:
    """The ceiling: the same re-training job with every label known."""
    root, ws, store = _workspace("reference", seed, 1.0)
    t0 = time.perf_counter()
    res = retrain(store, ws, None, {"survey": "sim", "force_activate": True, "name": "reference", **RETRAIN,
                                    "seed": seed})
    store.dispose()
    shutil.rmtree(root, ignore_errors=True)
    return {"name": "reference", "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
            "model_accuracy": res["metrics"]["accuracy"], "model_macro_f1": res["metrics"]["macro_f1"]}


def one(name: str, seed: int, keep: bool = False, known: float = 0.1) -> dict:
    root, ws, store = _workspace(name, seed, known)
    variant = dict(VARIANTS[name])
    loop = {"learn_from": variant.pop("learn_from", "consensus"), "semi": variant.pop("semi", False)}
    cfg = CampaignCfg(**{"rounds": S["rounds"], "votes_per_round": S["votes"], "anchoring": 0.3, "blind_fraction": 0.1,
                         "seed": seed, "retrain": {**RETRAIN, "seed": seed, **loop}, **variant})
    t0 = time.perf_counter()
    res = run_campaign(store, ws, "sim", cfg, progress=False)
    store.dispose()
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return {"name": name, "seed": seed, "seconds": round(time.perf_counter() - t0, 1), "rounds": res["rounds"],
            "anchoring": res["anchoring"], "habit": cfg.anchoring}


def votes_to_reach(rounds: list[dict], key: str, target: float) -> float | None:
    """Human votes at which ``key`` first reaches ``target``, linear between rounds; None if never."""
    prev = None
    for r in rounds:
        v = r[key]
        if v is not None and v >= target:
            if prev is None or prev[1] is None:
                return float(r["human_votes"])
            (x0, y0), x1 = prev, r["human_votes"]
            return float(x0 + (x1 - x0) * (target - y0) / max(v - y0, 1e-9))
        prev = (r["human_votes"], v)
    return None


def area_under(run: dict) -> float:
    """The area under a campaign's learning curve: the mean model accuracy over the rounds after the first
    votes."""
    return float(np.mean([p["model_accuracy"] for p in run["rounds"][1:]]))


def report() -> str:
    runs = read_runs(RESULTS / S["runs"])
    total = S["rounds"] * S["votes"]
    if not runs:
        return "(no campaign runs yet)"
    ref = {seed: r["model_accuracy"] for (n, seed), r in runs.items() if n == "reference"}
    by = {name: [r for (n, _), r in sorted(runs.items()) if n == name] for name in VARIANTS}
    # the target: the ceiling minus one point; and the area under each learning curve (the mean accuracy
    # over the rounds after the first votes), the usual way to compare active-learning queues
    lines = [f"Reference (every training label known, same recipe): accuracy {mean_std(list(ref.values()))} "
             f"({len(ref)} seeds).", "",
             f"| variant | seeds | model accuracy, start | after {total:,} votes | labels from volunteers | "
             "votes / retired | consensus accuracy | mean accuracy over the rounds (area under the curve) | "
             "votes to reach reference − 0.01 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in curves():
        rs = by[name]
        if not rs:
            continue
        last = [r["rounds"][-1] for r in rs]
        area = [area_under(r) for r in rs]
        reach_ref = [votes_to_reach(r["rounds"], "model_accuracy", ref[r["seed"]] - 0.01) for r in rs
                     if r["seed"] in ref]
        hit = [x for x in reach_ref if x is not None]
        lines.append(
            f"| {name} | {len(rs)} | {mean_std([r['rounds'][0]['model_accuracy'] for r in rs])} | "
            f"{mean_std([x['model_accuracy'] for x in last])} | {np.mean([x.get('n_consensus_labels', 0) for x in last]):.0f} | "
            f"{mean_std([x['votes_per_retired'] for x in last])} | {mean_std([x['consensus_accuracy'] for x in last])} | "
            f"{mean_std(area)} | "
            f"{f'{np.mean(hit):,.0f} ({len(hit)} of {len(reach_ref)} seeds)' if hit else f'not within {total:,}'} |")
    loop = [name for name in curves() if name in LOOP and by[name]]
    if loop:
        lines += loop_table(by, loop, total)
    anchored = [name for name in VARIANTS if name.startswith("anchoring") and by[name]]
    if anchored:
        lines += ["", "Gate open (every proposal shown but the blind 10 %), one round of 600 votes:", "",
                  "| anchoring habit | seeds | votes shown / blind | estimate, mean ± std | 95 % intervals | "
                  "intervals holding the habit | consensus accuracy |", "|---:|---:|---:|---:|---|---:|---:|"]
    for name in anchored:
        rs, habit = by[name], by[name][0]["habit"]
        a = [r["anchoring"] for r in rs]
        ci = [x["anchoring_ci"] for x in a if x["anchoring_ci"]]
        lines.append(f"| {habit} | {len(rs)} | {np.mean([x['n_shown'] for x in a]):.0f} / "
                     f"{np.mean([x['n_blind'] for x in a]):.0f} | {mean_std([x['anchoring'] for x in a])} | "
                     f"{', '.join(f'[{lo:.2f}, {hi:.2f}]' for lo, hi in ci)} | "
                     f"{sum(lo <= habit <= hi for lo, hi in ci)} of {len(ci)} | "
                     f"{mean_std([r['rounds'][-1]['consensus_accuracy'] for r in rs])} |")
    _plot(by, ref)
    return "\n".join(lines)


def loop_table(by: dict, loop: list[str], total: int) -> list[str]:
    """Issue 24's measures for the variants where every vote teaches, against random-queue, consensus-only
    training (``random``): the area under the curve and its margin over random in random's seed spreads,
    labels per vote, galaxies retired with the model's vote, and calibration (the refresh's, every round)."""
    base = [area_under(r) for r in by["random"]]
    sd = float(np.std(base, ddof=1)) if len(base) > 1 else float("nan")
    lines = ["", f"Every vote teaches, against random-queue consensus-only training (`random`), {total:,} votes:", "",
             "| variant | seeds | area under the curve | − random's, in random's seed std | labels per vote | "
             "retired with the model's vote | calibration error (ECE, every round): model alone → heads → tempered | "
             "temperature, last round | refreshes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ["random", "entropy_model_k2", *loop]:
        rs = by.get(name) or []
        if not rs:
            continue
        last = [r["rounds"][-1] for r in rs]
        a = [area_under(r) for r in rs]
        model_share = [x["retired_by"].get("consensus_with_model", 0) / max(1, x["retired"]) for x in last]
        ece = [(p["ece_model"], p["ece_untempered"], p["ece"]) for r in rs for p in r["rounds"] if p.get("ece") is not None]
        lines.append(
            f"| {name} | {len(rs)} | {mean_std(a)} | {(np.mean(a) - np.mean(base)) / sd:+.1f} | "
            f"{np.mean([x['retired'] / total for x in last]):.3f} | {np.mean(model_share):.1%} | "
            + (f"{np.mean([e[0] for e in ece]):.3f} → {np.mean([e[1] for e in ece]):.3f} → "
               f"{np.mean([e[2] for e in ece]):.3f} | "
               f"{np.mean([x['temperature'] for x in last]):.2f} | {np.mean([x['refreshes'] for x in last]):.0f} |"
               if ece else "– | – | – |"))
    return lines


def _plot(by: dict, ref: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, colour in zip(curves(), ("C7", "C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")):
        rs = by[name]
        if not rs:
            continue
        x = [p["human_votes"] for p in rs[0]["rounds"]]
        for ax, key in zip(axes, ("model_accuracy", "consensus_accuracy", "n_consensus_labels")):
            y = np.array([[p.get(key) if p.get(key) is not None else np.nan for p in r["rounds"]] for r in rs], float)
            m = np.nanmean(y, 0)
            ax.plot(x, m, "o-", color=colour, label=f"{name} ({len(rs)} seeds)")
            if len(rs) > 1:
                ax.fill_between(x, m - np.nanstd(y, 0), m + np.nanstd(y, 0), color=colour, alpha=0.12)
    if ref:
        axes[0].axhline(np.mean(list(ref.values())), color="k", ls=":", lw=1, label="every label known")
    axes[0].set_title("model accuracy (test split)")
    axes[1].set_title("consensus accuracy (retired galaxies)")
    axes[2].set_title("training labels from volunteers")
    for ax in axes:
        ax.set_xlabel("human votes")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(S["title"], fontsize=9)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / S["figure"], dpi=120)
    plt.close(fig)


LOOP_FIGURE = ["random", "entropy_model_k2", "votes", "votes_refresh", "votes_refresh_bald", "votes_refresh_bald_semi",
               "refresh_only"]


def loop_figure() -> Path:
    """Issue 24's learning curves, the sky (3,000 votes) beside FIRST (900): random-queue consensus-only
    training, today's best (entropy, the model as two volunteers), and each step of the loop, mean ± std
    over the seeds, with the all-labels reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    colours = dict(zip(LOOP_FIGURE, ("C7", "C1", "C0", "C2", "C3", "C4", "C5")))
    for ax, setting in zip(axes, ("sky-long", "first")):
        runs = read_runs(RESULTS / SETTINGS[setting]["runs"])
        ref = [r["model_accuracy"] for (n, _), r in runs.items() if n == "reference"]
        for name in LOOP_FIGURE:
            rs = [r for (n, _), r in sorted(runs.items()) if n == name]
            if not rs:
                continue
            x = [p["human_votes"] for p in rs[0]["rounds"]]
            y = np.array([[p["model_accuracy"] for p in r["rounds"]] for r in rs], float)
            m = y.mean(0)
            ls = "--" if name == "refresh_only" else "-"
            ax.plot(x, m, "o" + ls, ms=3, color=colours[name], label=f"{name} ({len(rs)})")
            if len(rs) > 1:
                ax.fill_between(x, m - y.std(0, ddof=1), m + y.std(0, ddof=1), color=colours[name], alpha=0.1)
        if ref:
            ax.axhline(np.mean(ref) - 0.01, color="k", ls=":", lw=1, label="every label known − 0.01")
        ax.set_title(SETTINGS[setting]["title"], fontsize=9)
        ax.set_xlabel("human votes")
        ax.set_ylabel("accuracy of the proposals (test split)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = ROOT / "docs" / "every_vote_curves.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", action="store_true", help="only rewrite the table and figure")
    ap.add_argument("--only", nargs="*", help="variants to run (default: all, and the reference)")
    ap.add_argument("--setting", choices=list(SETTINGS), default="sky", help="survey, length and variants")
    ap.add_argument("--loop-figure", action="store_true", help="only draw docs/every_vote_curves.png")
    ap.add_argument("--seeds", nargs="*", type=int, help="only these seeds (default: 0 1 2)")
    ap.add_argument("--keep", metavar="VARIANT", help="run this variant once (seed 0, half the labels known), keep its "
                    "workspace under bench/out/campaign/ for bench/screenshots.py --loop, log nothing")
    a = ap.parse_args()
    global S
    S = SETTINGS[a.setting]
    if a.loop_figure:
        print(loop_figure())
        return
    if a.keep:  # half the labels known, so that the Admin page (which sees only known answers) has enough
        one(a.keep, 0, keep=True, known=0.5)
        print(OUT / f"ws-{S['survey']}-{a.keep}-0")
        return
    if not a.report:
        for seed in a.seeds if a.seeds is not None else SEEDS:
            for name in ["reference", *S["variants"]]:
                if (name, seed) in read_runs(RESULTS / S["runs"]) or (a.only and name not in a.only):
                    continue
                row = reference(seed) if name == "reference" else one(name, seed)
                with open(RESULTS / S["runs"], "a") as f:
                    f.write(json.dumps(row, default=float) + "\n")
                print(f"{name} seed {seed} ({row['seconds']:.0f} s): "
                      f"{json.dumps(row['rounds'][-1] if 'rounds' in row else row)}", flush=True)
    body = report()
    write_section(ROOT / "BENCHMARKS.md", S["section"], body)
    print(body)


if __name__ == "__main__":
    main()
