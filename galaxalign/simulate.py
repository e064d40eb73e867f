"""Simulated campaigns through the real code: the science loop, measured.

Simulated volunteers — each with a per-class confusion matrix (skilled, average, careless, a spammer),
a speed, and an anchoring habit (the chance of taking a shown proposal instead of their own answer) —
ask the real queue (:func:`galaxalign.store.next_galaxy_for`) for galaxies, see what the Classify page
would show (:func:`galaxalign.ood.task_proposal`: the gate and the blind control), and answer through
the real :func:`galaxalign.store.record_classification`; consensus and retirement happen in the store,
and re-training runs as the real job (:func:`galaxalign.jobs.retrain`) after every round. Nothing of the
loop is re-implemented here: this module only plays the volunteers and keeps the score against the
survey file's truth.

    galaxalign simulate --workspace ws --survey sim --rounds 5 --votes-per-round 300 --strategy entropy
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tqdm.auto import tqdm

from .errors import GalaxalignError
from .fsutil import atomic_path
from .surveys import open_registered
from .jobs import RefreshParams, maybe_refresh, refresh, retrain
from .ood import task_proposal
from .store import (FLAT_TASK, QUEUE_STRATEGIES, DuplicateVote, RetirementRule, StoreError,
                    active_model, add_volunteer, anchoring_estimate, consensus_labels, get_survey, get_volunteer,
                    claim_refresh, next_galaxy_for, prediction_for, record_classification, retirement_summary,
                    set_blind_fraction, set_proposal_gate, set_refresh_every, set_retirement, training_labels)

KINDS = {"skilled": 0.92, "average": 0.78, "careless": 0.6, "spammer": None}  # accuracy on the diagonal
DEFAULT_CREW = ("skilled", "skilled", "average", "average", "average", "careless", "spammer")


class CampaignError(GalaxalignError):
    """A campaign that cannot run as asked."""


@dataclass
class SimVolunteer:
    """One simulated volunteer: answers from ``confusion[true class]``, or takes a shown proposal with
    probability ``anchoring``; ``seconds`` per vote."""

    name: str
    kind: str
    confusion: np.ndarray
    anchoring: float = 0.0
    seconds: float = 8.0

    def answer(self, truth: int, shown: int | None, rng: np.random.Generator) -> int:
        if shown is not None and rng.random() < self.anchoring:
            return int(shown)
        return int(rng.choice(len(self.confusion), p=self.confusion[truth]))


def confusion_for(kind: str, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A row-stochastic confusion matrix: ``KINDS[kind]`` on the diagonal and the rest spread unevenly
    (each volunteer confuses some classes more than others); a spammer answers at random."""
    if kind not in KINDS:
        raise CampaignError(f"volunteer kind {kind!r} must be one of {', '.join(KINDS)}")
    acc = KINDS[kind]
    if acc is None:
        return np.full((n_classes, n_classes), 1.0 / n_classes)
    m = np.zeros((n_classes, n_classes))
    for t in range(n_classes):
        off = rng.dirichlet(np.ones(n_classes - 1) * 0.7) * (1 - acc)
        m[t, np.arange(n_classes) != t] = off
        m[t, t] = acc
    return m


@dataclass
class CampaignCfg:
    rounds: int = 5
    votes_per_round: int = 300
    strategy: str = "entropy"
    crew: tuple = DEFAULT_CREW
    anchoring: float = 0.3
    blind_fraction: float = 0.1
    seed: int = 0
    retrain: dict = field(default_factory=dict)  # RetrainParams fields for every round's re-training
    gate: dict | None = None  # override each new model's proposal gate (set_proposal_gate); None: as calibrated
    retirement: dict = field(default_factory=dict)  # the survey's retirement rule (set_retirement), e.g. model_votes
    gold_rate: float | None = None  # a fixed share of gold tasks; None: the queue's decaying rate
    refresh_every: int = 0  # > 0: the refresh job runs every this many votes and after every re-training
    refresh_pseudo: float = 0.0  # the refresh's pseudo-vote confidence (0: none; galaxalign.heads.pseudo_votes)
    retrain_rounds: bool = True  # False: the tower is trained once, before the votes; only the refresh learns

    def check(self) -> "CampaignCfg":
        if self.strategy not in QUEUE_STRATEGIES:
            raise CampaignError(f"strategy {self.strategy!r} must be one of {', '.join(QUEUE_STRATEGIES)}")
        if self.refresh_every < 0 or not 0 <= self.refresh_pseudo < 1:
            raise CampaignError("refresh_every must be ≥ 0 and refresh_pseudo between 0 and 1")
        if not self.retrain_rounds and not self.refresh_every:
            raise CampaignError("a campaign that never re-trains needs the refresh (refresh_every > 0)")
        if self.rounds < 1 or self.votes_per_round < 1:
            raise CampaignError("a campaign needs at least one round of at least one vote")
        if not 0 <= self.anchoring <= 1 or not 0 <= self.blind_fraction <= 1:
            raise CampaignError("anchoring and blind fraction must be between 0 and 1")
        for k in self.crew:
            confusion_for(k, 2, np.random.default_rng(0))
        try:
            RetirementRule.from_dict(self.retirement)
        except StoreError as e:
            raise CampaignError(str(e)) from None
        return self


def make_crew(store, cfg: CampaignCfg, n_classes: int, rng: np.random.Generator) -> list[SimVolunteer]:
    """The simulated volunteers, created as real accounts (``sim<seed>-<kind>-<i>``)."""
    crew = []
    for i, kind in enumerate(cfg.crew):
        v = SimVolunteer(f"sim{cfg.seed}-{kind}-{i}", kind, confusion_for(kind, n_classes, rng), cfg.anchoring,
                         float(rng.uniform(4, 20)))
        add_volunteer(store, v.name, "volunteer", None)
        crew.append(v)
    return crew


def _score(store, survey_name: str, truth: np.ndarray) -> dict:
    mv = active_model(store)
    gate = ((mv.metrics or {}).get("proposal") or {}) if mv else {}
    extra = {"retired_by": retirement_summary(store, survey_name)["by_reason"],
             "gate_confidence_floor": gate.get("confidence_floor")}
    df = consensus_labels(store, survey_name, retired_only=False)
    if df.empty or "retired" not in df:
        return {"retired": 0, "consensus_accuracy": None, "votes_per_retired": None, **extra}
    retired = df[df.retired]
    ok = retired.consensus_label.notna()
    acc = float(np.mean(retired.consensus_label[ok].astype(int).to_numpy() == truth[retired.idx[ok].to_numpy()])) \
        if ok.any() else None
    return {"retired": int(len(retired)), "consensus_accuracy": acc,
            "votes_per_retired": float(retired.n_votes.mean()) if len(retired) else None, **extra}


def run_campaign(store, workspace, survey_name: str, cfg: CampaignCfg, progress: bool = True) -> dict:
    """Play ``cfg.rounds`` rounds of ``cfg.votes_per_round`` votes on a registered survey, re-training
    after each; returns ``{"config", "rounds": [...], "anchoring": ...}`` scored against the file's truth."""
    cfg.check()
    row = get_survey(store, survey_name)
    if row.workflow != "flat":
        raise CampaignError(f"survey {survey_name!r}: campaigns answer a flat class list; register it with "
                            "workflow 'flat'")
    survey = open_registered(row)
    truth = survey.labels
    rng = np.random.default_rng(cfg.seed)
    set_blind_fraction(store, survey_name, cfg.blind_fraction)
    set_retirement(store, survey_name, **cfg.retirement)
    crew = make_crew(store, cfg, len(row.class_names), rng)
    ids = {v.name: get_volunteer(store, v.name).id for v in crew}
    rounds = []
    params = {"survey": survey_name, "force_activate": True, **cfg.retrain}
    set_refresh_every(store, survey_name, cfg.refresh_every)
    refresh_params = RefreshParams(survey=survey_name, pseudo=cfg.refresh_pseudo, seed=cfg.seed)

    def refresh_now() -> dict:  # as the worker would: every vote so far, the counter reset
        claim_refresh(store, survey_name, force=True)
        return refresh(store, workspace, None, refresh_params)

    def train_round(r: int) -> dict:
        res = retrain(store, workspace, None, {**params, "name": f"sim{cfg.seed}-r{r}"})
        if cfg.gate is not None:
            set_proposal_gate(store, res["model"], **cfg.gate)
        res["accuracy"], res["macro_f1"] = res["metrics"]["accuracy"], res["metrics"]["macro_f1"]
        if cfg.refresh_every:  # a new tower: its proposals refitted on every vote at once, as the worker would
            fresh = refresh_now()
            res["refresh"] = fresh
            res["tower_accuracy"], res["accuracy"] = res["accuracy"], fresh["test_accuracy"]
        return res

    def refresh_round() -> dict:  # the tower as it was; its proposals refitted on every vote so far
        fresh = refresh_now()
        return {"refresh": fresh, "accuracy": fresh["test_accuracy"], "macro_f1": fresh.get("macro_f1"),
                "tower_accuracy": first["metrics"]["accuracy"],
                "n_consensus_labels": training_labels(store, survey_name, len(survey))[1]}

    def measured(res: dict) -> dict:
        row = {"model_accuracy": res["accuracy"], "model_macro_f1": res["macro_f1"]}
        if "refresh" in res:
            f = res["refresh"]
            row.update(tower_accuracy=res["tower_accuracy"], refreshes=n_refreshes,
                       **{k: f.get(k) for k in ("ece_model", "ece_untempered", "ece", "temperature")})
        return row

    n_refreshes = 0
    first = train_round(0)
    rounds.append({"round": 0, "human_votes": 0, **measured(first), **_score(store, survey_name, truth)})
    votes = 0
    bar = tqdm(total=cfg.rounds * cfg.votes_per_round, desc="simulated votes", unit="vote", disable=not progress)
    for r in range(1, cfg.rounds + 1):
        mv = active_model(store)
        for k in range(cfg.votes_per_round):
            vol = crew[(votes + k) % len(crew)]
            g = next_galaxy_for(store, vol.name, survey_name, rng, gold_rate=cfg.gold_rate, strategy=cfg.strategy)
            if g is None:
                continue
            tp = task_proposal(prediction_for(store, g.id, mv.id) if mv else None, mv, cfg.blind_fraction,
                               ids[vol.name], g.id)
            answer = vol.answer(int(truth[g.idx]), tp.record[0] if tp.shown else None, rng)
            try:
                record_classification(store, vol.name, g.id, [[FLAT_TASK, answer]], seconds=vol.seconds,
                                      proposal=tp.record, model_version_id=tp.model_version_id, blind=tp.blind)
            except DuplicateVote:  # not expected from the queue; never counted twice
                continue
            if cfg.refresh_every and maybe_refresh(store, survey_name, workspace, run_now=True) is not None:
                n_refreshes += 1
                mv = active_model(store)  # its gate was re-calibrated with the proposals
            bar.update(1)
        votes += cfg.votes_per_round
        res = train_round(r) if cfg.retrain_rounds else refresh_round()
        rounds.append({"round": r, "human_votes": votes, **measured(res), "n_consensus_labels": res["n_consensus_labels"],
                       **_score(store, survey_name, truth)})
    bar.close()
    return {"config": {**asdict(cfg), "crew": list(cfg.crew)}, "survey": survey_name, "rounds": rounds,
            "anchoring": anchoring_estimate(store, survey_name, truth=truth)}


def write_campaign(result: dict, out: str | os.PathLike) -> Path:
    """The campaign as JSON, and beside it a PNG of model and consensus accuracy against human votes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float))
    r = result["rounds"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = [row["human_votes"] for row in r]
    ax.plot(x, [row["model_accuracy"] for row in r], "o-", label="model (test split)")
    ax.plot(x, [row["consensus_accuracy"] if row["consensus_accuracy"] is not None else np.nan for row in r], "s--",
            label="consensus (retired galaxies)")
    ax.set_xlabel("human votes")
    ax.set_ylabel("accuracy against truth")
    ax.set_title(f"campaign, {result['config']['strategy']} queue")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return out
