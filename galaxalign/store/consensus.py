"""Consensus from many volunteers: vote fractions, consensus labels, volunteer skill.

- Per-answer vote fractions follow Galaxy Zoo: for each task, the share of the volunteers who
  reached that task and chose each answer (so fractions of one task sum to 1).
- Per-class fractions: the share of all votes whose path resolves to each class (``None``: a path
  that names no class of the label set, e.g. a star).
- Volunteer skill comes from gold-standard galaxies (known expert label): a confusion matrix per
  volunteer and a smoothed accuracy (correct + 1) / (answered + 2) used as the vote weight when
  ``weighted=True``.
- ``method="dawid_skene"`` aggregates a survey's flat votes with crowd-kit's Dawid–Skene EM (every
  volunteer's confusion matrix estimated from all their votes at once, the gold galaxies' known labels
  held fixed) — a batch view for export and training labels; retirement decides vote by vote
  (:mod:`~.retirement`).
"""
from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from .lookup import galaxy_row, survey_row, volunteer_row
from .db import Store, StoreError
from .models import Classification, Galaxy, Volunteer
from .retirement import RetirementRule, top_of
from .surveys import gold_survey_ids
from ..taxonomy import AnswerMap, get_label_set

__all__ = ["vote_fractions", "consensus_labels", "volunteer_skill", "skill_weights", "volunteer_stats",
           "retirement_summary", "volunteer_history", "CONSENSUS_METHODS",
           "training_votes", "CERTAIN_VOTES"]


def skill_weights(store: Store, survey: int | str | None = None) -> dict[int, float]:
    """``{volunteer_id: (correct + 1) / (gold answered + 2)}`` from gold-standard galaxies."""
    with store.read() as s:
        q = (select(Classification.volunteer_id, Classification.resolved_class, Galaxy.known_label)
             .join(Galaxy, Galaxy.id == Classification.galaxy_id).where(Galaxy.gold.is_(True)))
        if survey is not None:  # its own gold and its linked gold survey's
            q = q.where(Galaxy.survey_id.in_(gold_survey_ids(survey_row(s, survey))))
        rows = s.execute(q).all()
    correct, total = defaultdict(int), defaultdict(int)
    for vid, cls, known in rows:
        total[vid] += 1
        correct[vid] += int(cls == known)
    return {vid: (correct[vid] + 1) / (total[vid] + 2) for vid in total}


def _fractions(votes: list[tuple[int, list, int | None]], weights: dict[int, float] | None) -> dict:
    answer_w: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    class_w: dict[int | None, float] = defaultdict(float)
    total = 0.0
    for vid, path, cls in votes:
        w = 1.0 if weights is None else weights.get(vid, 0.5)  # no gold seen yet: a coin's worth
        total += w
        class_w[cls] += w
        for task, answer in path:
            answer_w[task][str(answer)] += w
    answers = {task: {a: w / sum(ws.values()) for a, w in ws.items()} for task, ws in answer_w.items()}
    classes = {c: w / total for c, w in class_w.items()} if total else {}
    return {"n_votes": len(votes), "answers": answers, "classes": classes}


def vote_fractions(store: Store, galaxy: int | str, weighted: bool = False, survey: int | str | None = None) -> dict:
    """``{"n_votes", "answers": {task: {answer: fraction}}, "classes": {class: fraction}}`` of one galaxy.

    >>> vote_fractions(store, "synth-7-000012")          # doctest: +SKIP
    {'n_votes': 3, 'answers': {'T01': {'t01_smooth': 1.0}, 'T07': {'t07_round': 0.67, 't07_in_between': 0.33}, ...},
     'classes': {2: 0.67, 3: 0.33}}
    """
    with store.read() as s:
        sid = survey_row(s, survey).id if survey is not None else None
        g = galaxy_row(s, galaxy, sid)
        votes = [(v, a, c) for v, a, c in s.execute(
            select(Classification.volunteer_id, Classification.answers, Classification.resolved_class)
            .where(Classification.galaxy_id == g.id, Classification.late.is_(False)).order_by(Classification.id))]
        sid = g.survey_id
    return _fractions(votes, skill_weights(store, sid) if weighted else None)


CONSENSUS_METHODS = ("majority", "weighted", "dawid_skene")


def consensus_labels(store: Store, survey: int | str, weighted: bool = False, retired_only: bool = False,
                     method: str | None = None) -> pd.DataFrame:
    """One row per galaxy with votes: ``id_str, idx, n_votes, retired, consensus_label, agreement,
    known_label, gold`` (plus ``frac_<class>`` columns). ``consensus_label`` is the top class (ties
    go to the lower class index), ``None`` when the top "class" is no class. ``method``: ``majority``,
    ``weighted`` (gold skill as vote weight; also ``weighted=True``) or ``dawid_skene`` (the fractions
    are then its posterior class probabilities; votes that name no class are left out)."""
    method = method or ("weighted" if weighted else "majority")
    if method not in CONSENSUS_METHODS:
        raise StoreError(f"consensus method {method!r} must be one of {', '.join(CONSENSUS_METHODS)}")
    weighted = method == "weighted"
    with store.read() as s:
        sv = survey_row(s, survey)
        rows = s.execute(
            select(Galaxy.id, Galaxy.id_str, Galaxy.idx, Galaxy.retired, Galaxy.known_label, Galaxy.gold,
                   Classification.volunteer_id, Classification.answers, Classification.resolved_class)
            .join(Classification, Classification.galaxy_id == Galaxy.id)
            .where(Galaxy.survey_id == sv.id, Classification.late.is_(False))  # late votes are kept, not counted
            .order_by(Galaxy.id, Classification.id)).all()
        n_classes = len(sv.class_names)
    weights = skill_weights(store, sv.id) if weighted else None
    by_galaxy: dict[int, dict] = {}
    for gid, id_str, idx, retired, known, gold, vid, answers, cls in rows:
        d = by_galaxy.setdefault(gid, {"id_str": id_str, "idx": idx, "retired": retired, "known_label": known,
                                       "gold": gold, "votes": []})
        d["votes"].append((vid, answers, cls))
    posterior = _dawid_skene(by_galaxy) if method == "dawid_skene" else {}
    out = []
    for gid, d in by_galaxy.items():
        if retired_only and not d["retired"]:
            continue
        fr = posterior.get(gid) if method == "dawid_skene" else _fractions(d["votes"], weights)["classes"]
        if not fr:  # Dawid–Skene: only votes that name no class
            fr = {None: 1.0}
        top, agreement = top_of(fr)
        row = {"id_str": d["id_str"], "idx": d["idx"], "n_votes": len(d["votes"]), "retired": d["retired"],
               "consensus_label": top, "agreement": agreement, "known_label": d["known_label"], "gold": d["gold"]}
        row.update({f"frac_{c}": fr.get(c, 0.0) for c in range(n_classes)})
        out.append(row)
    cols = ["id_str", "idx", "n_votes", "retired", "consensus_label", "agreement", "known_label", "gold"] + \
        [f"frac_{c}" for c in range(n_classes)]
    df = pd.DataFrame(out, columns=cols)
    df["consensus_label"] = df["consensus_label"].astype("Int64")
    df["known_label"] = df["known_label"].astype("Int64")
    return df


def _dawid_skene(by_galaxy: dict) -> dict[int, dict[int, float]]:
    """``{galaxy id: {class: posterior}}`` from crowd-kit's Dawid–Skene on the votes that name a class,
    the gold galaxies' known labels held as truth."""
    from crowdkit.aggregation import DawidSkene  # heavy (SciPy's stats) and only on this path
    data = pd.DataFrame([(gid, vid, int(cls)) for gid, d in by_galaxy.items() for vid, _, cls in d["votes"]
                         if cls is not None], columns=["task", "worker", "label"])
    if data.empty:
        return {}
    gold = pd.Series({gid: int(d["known_label"]) for gid, d in by_galaxy.items()
                      if d["gold"] and d["known_label"] is not None and gid in set(data.task)}, dtype="int64")
    with warnings.catch_warnings():  # crowd-kit 1.4 still passes pandas keywords that pandas 3 deprecates
        warnings.simplefilter("ignore")
        proba = DawidSkene(n_iter=100).fit(data, true_labels=gold if len(gold) else None).probas_
    return {int(gid): {int(c): float(p) for c, p in row.items() if p > 0} for gid, row in proba.iterrows()}


def volunteer_skill(store: Store, volunteer: int | str, n_classes: int | None = None) -> dict:
    """Gold-standard record of one volunteer: ``{"answered", "correct", "accuracy", "confusion"}``.
    The confusion matrix has rows = expert class, columns = the volunteer's class (last column: no class)."""
    with store.read() as s:
        v = volunteer_row(s, volunteer)
        rows = s.execute(select(Classification.resolved_class, Galaxy.known_label)
                         .join(Galaxy, Galaxy.id == Classification.galaxy_id)
                         .where(Classification.volunteer_id == v.id, Galaxy.gold.is_(True))).all()
    if n_classes is None:
        n_classes = max([k for _, k in rows if k is not None] + [c for c, _ in rows if c is not None] + [-1]) + 1
    m = np.zeros((n_classes, n_classes + 1), np.int64)
    for cls, known in rows:
        if known is None:
            continue
        m[known, n_classes if cls is None else cls] += 1
    correct = int(np.trace(m[:, :n_classes])) if n_classes else 0
    return {"answered": len(rows), "correct": correct, "accuracy": correct / len(rows) if rows else None,
            "confusion": m.tolist()}


def volunteer_stats(store: Store, volunteer: int | str | None = None) -> pd.DataFrame:
    """Per volunteer (or just ``volunteer``, as the Classify page asks after every vote): votes, how
    often the crowd's consensus agreed with them, how often they accepted the model's proposal, and
    gold accuracy."""
    with store.read() as s:
        q = (select(Volunteer.id, Volunteer.name, Volunteer.role, Classification.resolved_class,
                    Classification.accepted, Galaxy.consensus_label, Galaxy.n_votes, Galaxy.gold, Galaxy.known_label)
             .join(Classification, Classification.volunteer_id == Volunteer.id, isouter=True)
             .join(Galaxy, Galaxy.id == Classification.galaxy_id, isouter=True))
        if volunteer is not None:
            q = q.where(Volunteer.id == volunteer_row(s, volunteer).id)
        rows = s.execute(q).all()
    agg: dict[int, dict] = {}
    for vid, name, role, cls, accepted, cons, n_votes, gold, known in rows:
        d = agg.setdefault(vid, {"volunteer": name, "role": role, "votes": 0, "crowd_checked": 0, "crowd_agreed": 0,
                                 "proposals": 0, "accepted": 0, "gold": 0, "gold_correct": 0})
        if n_votes is None:
            continue
        d["votes"] += 1
        if n_votes >= 2:  # the crowd's view needs someone else's vote
            d["crowd_checked"] += 1
            d["crowd_agreed"] += int(cls == cons)
        if accepted is not None:
            d["proposals"] += 1
            d["accepted"] += int(accepted)
        if gold:
            d["gold"] += 1
            d["gold_correct"] += int(cls == known)
    df = pd.DataFrame(list(agg.values()))
    if df.empty:
        return df
    df["crowd_agreement"] = df.crowd_agreed / df.crowd_checked.where(df.crowd_checked > 0)
    df["accept_rate"] = df.accepted / df.proposals.where(df.proposals > 0)
    df["gold_accuracy"] = df.gold_correct / df.gold.where(df.gold > 0)
    return df.sort_values("votes", ascending=False).reset_index(drop=True)



def training_labels(store: Store, survey: int | str, n: int) -> tuple[np.ndarray, int]:
    """Labels for re-training, one per galaxy of the survey file (``n`` of them, -1 = none): the galaxy's
    known label (expert) if any, else the consensus of a retired galaxy, else none. Also returns how many
    labels came from consensus."""
    labels = np.full(n, -1, np.int64)
    from_consensus = 0
    with store.read() as s:
        sv = survey_row(s, survey)
        for idx, known, retired, cons in s.execute(
                select(Galaxy.idx, Galaxy.known_label, Galaxy.retired, Galaxy.consensus_label)
                .where(Galaxy.survey_id == sv.id)):
            if known is not None:
                labels[idx] = known
            elif retired and cons is not None:
                labels[idx] = cons
                from_consensus += 1
    return labels, from_consensus


CERTAIN_VOTES = 20.0  # a known or gold label weighs as this many unanimous votes


def training_votes(store: Store, survey: int | str, n: int,
                   certain_votes: float = CERTAIN_VOTES) -> tuple[np.ndarray, AnswerMap]:
    """Every galaxy's vote counts for training (Walmsley et al. 2020: learn from the votes, not from one
    label per retired galaxy): ``(counts (n, K) float32, AnswerMap)``, row = galaxy idx, one column per
    ``(task, answer)`` of the map (:meth:`galaxalign.taxonomy.LabelSet.answer_map`; a flat workflow's
    columns are its classes). A vote whose path resolves to a class counts there; on the GZ2 tree a vote
    that resolves to none counts at each task where its answer tells classes apart.

    Every vote counts — a galaxy still waiting for votes, and a late vote on a retired one, teach as much
    as any (retirement is about when to stop asking, not about what the answers say). Where the survey
    retires by ``skill``, each vote weighs its volunteer's gold record (:func:`skill_weights`), as the
    retirement does. A known or gold label is certain: ``certain_votes`` unanimous votes for its class,
    whatever volunteers answered."""
    with store.read() as s:
        sv = survey_row(s, survey)
        n_classes = len(sv.class_names)
        skill = RetirementRule.from_dict(sv.retirement).method == "skill"
        label_set = get_label_set(sv.label_set_file or sv.label_set) if sv.workflow == "gz2" else None
        tree = label_set is not None and label_set.tree == "gz2"
        amap = label_set.answer_map() if tree else AnswerMap.flat(n_classes)
        known = s.execute(select(Galaxy.idx, Galaxy.known_label)
                          .where(Galaxy.survey_id == sv.id, Galaxy.known_label.is_not(None))).all()
        votes = s.execute(select(Galaxy.idx, Classification.volunteer_id, Classification.resolved_class,
                                 Classification.answers)
                          .join(Classification, Classification.galaxy_id == Galaxy.id)
                          .where(Galaxy.survey_id == sv.id, Galaxy.known_label.is_(None))).all()
    weights = skill_weights(store, sv.id) if skill else {}
    counts = np.zeros((n, len(amap.columns)), np.float32)
    for idx, vid, cls, answers in votes:
        if idx >= n:
            continue
        w = weights.get(vid, 0.5) if skill else 1.0
        if cls is not None and 0 <= cls < n_classes:
            counts[idx, cls] += w
        elif tree:  # no class: what its answers say, task by task
            for task, answer in answers:
                k = amap.column(task, answer)
                if k is not None:
                    counts[idx, k] += w
    for idx, label in known:
        if idx < n and 0 <= label < n_classes:
            counts[idx, label] = certain_votes
    return counts, amap


def _anchoring(stats: np.ndarray) -> tuple[float, float, float] | None:
    """(follow_shown, follow_blind, anchoring) from per-volunteer rows ``[shown n, shown followed, blind n,
    blind followed]`` over wrong proposals: each volunteer's blind rate weighted by their shown votes,
    so that volunteers who happened to get more blind tasks do not tilt the comparison."""
    ok = stats[:, 2] > 0
    ns = stats[ok, 0].sum()
    if ns == 0:
        return None
    fs = stats[ok, 1].sum() / ns
    fb = float(np.sum(stats[ok, 0] * stats[ok, 3] / stats[ok, 2]) / ns)
    return fs, fb, (fs - fb) / max(1 - fb, 1e-9)


def anchoring_estimate(store: Store, survey: int | str, truth: np.ndarray | None = None, n_boot: int = 1000,
                       seed: int = 0) -> dict:
    """How much a shown proposal pulls volunteers, from the blind control tasks.

    Votes whose task had a proposal, on galaxies with a known truth (the store's known labels, or
    ``truth`` by survey index, -1 for none), split into shown and blind. For each group: agreement with
    the truth and with the model. Among the votes whose proposal was **wrong**, per volunteer: the share
    that answered the wrong class anyway when it was shown and when it was hidden. ``follow_shown`` and
    ``follow_blind`` (the blind rate of each volunteer weighted by their shown votes), ``excess`` = their
    difference, and ``anchoring`` = ``excess / (1 - follow_blind)``: the share of answers that would have
    been otherwise but took the shown proposal — for volunteers who take a shown proposal with
    probability *a*, it estimates *a*. Intervals: 95 %, bootstrap over volunteers (votes of one
    volunteer are not independent)."""
    with store.read() as s:
        sv = survey_row(s, survey)
        rows = s.execute(select(Classification.volunteer_id, Classification.resolved_class,
                                Classification.proposal_class, Classification.blind, Galaxy.idx, Galaxy.known_label)
                         .join(Galaxy, Galaxy.id == Classification.galaxy_id)
                         .where(Galaxy.survey_id == sv.id, Classification.proposal_class.is_not(None))).all()
    vol, ans, prop, blind, true = [], [], [], [], []
    for v, answer, proposal, is_blind_, idx, known in rows:
        t = (int(truth[idx]) if truth[idx] >= 0 else None) if truth is not None else known
        if t is None or answer is None:
            continue
        vol.append(v), ans.append(answer), prop.append(proposal), blind.append(bool(is_blind_)), true.append(t)
    vol, ans, prop, true = (np.asarray(a, np.int64) for a in (vol, ans, prop, true))
    blind = np.asarray(blind, bool)
    out: dict = {"n_shown": int((~blind).sum()), "n_blind": int(blind.sum())}
    for name, mask in (("shown", ~blind), ("blind", blind)):
        out[f"truth_agreement_{name}"] = float(np.mean(ans[mask] == true[mask])) if mask.any() else None
        out[f"model_agreement_{name}"] = float(np.mean(ans[mask] == prop[mask])) if mask.any() else None
    wrong, follow = prop != true, ans == prop
    out.update(n_wrong_shown=int((wrong & ~blind).sum()), n_wrong_blind=int((wrong & blind).sum()))
    vols = np.unique(vol[wrong])
    stats = np.array([[np.sum(m & ~blind), np.sum(m & ~blind & follow), np.sum(m & blind), np.sum(m & blind & follow)]
                      for m in (wrong & (vol == v) for v in vols)], float).reshape(-1, 4)
    point = _anchoring(stats) if len(stats) else None
    empty = {"follow_shown": None, "follow_blind": None, "excess": None, "anchoring": None, "anchoring_ci": None,
             "excess_ci": None, "n_volunteers": int(len(vols))}
    if point is None:
        return {**out, **empty}
    rng = np.random.default_rng(seed)
    boot = [b for b in (_anchoring(stats[rng.integers(0, len(stats), len(stats))]) for _ in range(n_boot))
            if b is not None]
    fs, fb, a = point
    ex = np.percentile([b[0] - b[1] for b in boot], [2.5, 97.5])
    an = np.percentile([b[2] for b in boot], [2.5, 97.5])
    return {**out, "follow_shown": float(fs), "follow_blind": float(fb), "excess": float(fs - fb),
            "excess_ci": [float(ex[0]), float(ex[1])], "anchoring": float(a), "anchoring_ci": [float(an[0]), float(an[1])],
            "n_volunteers": int(len(vols))}


def retirement_summary(store: Store, survey: int | str) -> dict:
    """A survey's retirement rule (every field) and what it has done: ``{"rule", "retired", "by_reason":
    {reason: galaxies}, "votes_per_retired"}`` — the human votes a retired galaxy took, on average."""
    with store.read() as s:
        sv = survey_row(s, survey)
        rows = s.execute(select(Galaxy.retired_reason, func.count(), func.avg(Galaxy.n_votes))
                         .where(Galaxy.survey_id == sv.id, Galaxy.retired.is_(True))
                         .group_by(Galaxy.retired_reason)).all()
        rule = RetirementRule.from_dict(sv.retirement).to_dict()
    n = sum(k for _, k, _ in rows)
    return {"rule": rule, "retired": int(n), "by_reason": {r or "unknown": int(k) for r, k, _ in rows},
            "votes_per_retired": float(sum(k * v for _, k, v in rows) / n) if n else None}


def volunteer_history(store: Store, volunteer: int | str) -> pd.DataFrame:
    """One volunteer's votes in the order given, with how they compare as the record grows: ``created_at,
    id_str, survey_id, answer, consensus, n_votes, gold, known_label`` and running ``crowd_agreement``
    (over votes on galaxies someone else also classified) and ``gold_accuracy`` (over gold galaxies)."""
    with store.read() as s:
        v = volunteer_row(s, volunteer)
        rows = s.execute(select(Classification.created_at, Galaxy.id_str, Galaxy.survey_id,
                                Classification.resolved_class, Galaxy.consensus_label, Galaxy.n_votes, Galaxy.gold,
                                Galaxy.known_label)
                         .join(Galaxy, Galaxy.id == Classification.galaxy_id)
                         .where(Classification.volunteer_id == v.id).order_by(Classification.id)).all()
    df = pd.DataFrame(rows, columns=["created_at", "id_str", "survey_id", "answer", "consensus", "n_votes", "gold",
                                     "known_label"])
    checked = df.n_votes >= 2
    agreed = checked & (df.answer == df.consensus)
    gold = df.gold.astype(bool) & df.known_label.notna()
    right = gold & (df.answer == df.known_label)
    with np.errstate(invalid="ignore", divide="ignore"):
        df["crowd_agreement"] = np.where(checked.cumsum() > 0, agreed.cumsum() / checked.cumsum(), np.nan)
        df["gold_accuracy"] = np.where(gold.cumsum() > 0, right.cumsum() / gold.cumsum(), np.nan)
    return df
