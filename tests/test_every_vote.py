"""Every vote teaches: the Dirichlet–multinomial vote term, the vote counts training reads, training with
them, the fast refresh (an ensemble of heads on the stored embeddings), its temperature and BALD."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import func, select

from conftest import copy_workspace
from test_jobs import tiny_config as _tiny
from galaxalign.data import load_survey
from galaxalign.errors import GalaxalignError
from galaxalign.fsutil import file_sha256
from galaxalign.heads import (Heads, expected_calibration_error, fit_heads, fit_temperature, mutual_information,
                              pseudo_votes)
from galaxalign.jobs import RefreshParams, enqueue, maybe_refresh, refresh, retrain
from galaxalign.loss import dirichlet_multinomial_nll
from galaxalign.store import (FLAT_TASK, RetirementRule, active_model, add_volunteer, claim_refresh,
                              next_galaxy_for, open_store, record_classification, register_survey, set_refresh_every,
                              set_retirement, training_votes)
from galaxalign.store.db import StoreError
from galaxalign.store.models import Galaxy, Job, Prediction
from galaxalign.workspace import Workspace


# -- the vote term ------------------------------------------------------------------------------

def test_the_vote_term_equals_the_hand_computed_dirichlet_multinomial():
    # p = (¾, ¼), A = 4 → α = (3, 1); votes (2, 1): the beta-binomial P(2 of 3) = C(3,2) B(5,2) / B(3,1) = 0.3
    logits = torch.tensor([[math.log(3.0), 0.0]])
    nll = dirichlet_multinomial_nll(logits, torch.tensor([[2.0, 1.0]]), concentration=4.0)
    assert nll.item() == pytest.approx(-math.log(0.3), abs=1e-5)
    # one vote is the categorical likelihood, whatever A; no vote teaches nothing
    one = dirichlet_multinomial_nll(logits, torch.tensor([[0.0, 1.0]]), concentration=7.0)
    assert one.item() == pytest.approx(-math.log(0.25), abs=1e-5)
    assert dirichlet_multinomial_nll(logits, torch.zeros(1, 2)).item() == pytest.approx(0.0, abs=1e-6)


def test_with_no_overdispersion_it_is_the_soft_label_cross_entropy_times_the_votes():
    logits = torch.tensor([[0.3, -1.2, 0.8]])
    k = torch.tensor([[3.0, 1.0, 4.0]])
    p = torch.softmax(logits, -1)
    log_coef = math.lgamma(9) - sum(math.lgamma(x + 1) for x in (3, 1, 4))
    soft_ce = -(k / k.sum() * p.log()).sum()
    nll = dirichlet_multinomial_nll(logits.double(), k.double(), concentration=1e9)
    assert nll.item() == pytest.approx(8 * soft_ce.item() - log_coef, rel=1e-4)


def test_two_votes_and_twenty_with_the_same_consensus_weigh_differently():
    logits = torch.zeros(2, 3, requires_grad=True)
    counts = torch.tensor([[2.0, 0.0, 0.0], [20.0, 0.0, 0.0]])  # both unanimous for class 0
    dirichlet_multinomial_nll(logits, counts, 10.0).sum().backward()
    g2, g20 = logits.grad.norm(dim=1).tolist()
    assert g20 > 2 * g2          # twenty votes teach more than two ...
    assert g20 < 10 * g2         # ... and less than ten times as much: volunteers' answers are over-dispersed
    # the soft label of both is the same one-hot: a soft-label loss alone could not tell them apart
    assert torch.equal(counts[0] / counts[0].sum(), counts[1] / counts[1].sum())


# -- the counts training reads ----------------------------------------------------------------

@pytest.fixture
def flat(store, synth_h5):
    survey = load_survey(synth_h5)
    register_survey(store, survey, "sim", workflow="flat", known_fraction=0.2, gold_fraction=0.1, seed=1)
    for k in range(4):
        add_volunteer(store, f"v{k}", "volunteer", None)
    return survey


def _unknown(store, n):
    with store.read() as s:
        return s.execute(select(Galaxy.id, Galaxy.idx).where(Galaxy.known_label.is_(None))
                         .order_by(Galaxy.idx).limit(n)).all()


def test_training_votes_count_every_vote_and_hold_known_labels_certain(store, flat):
    (g1, i1), (g2, i2) = _unknown(store, 2)
    record_classification(store, "v0", g1, [[FLAT_TASK, 3]])          # one vote, not retired: it teaches already
    for k, a in enumerate((1, 1, 2)):
        record_classification(store, f"v{k}", g2, [[FLAT_TASK, a]])
    counts, amap = training_votes(store, "sim", len(flat), certain_votes=20)
    assert counts.shape == (len(flat), len(flat.class_names)) and np.array_equal(amap.implies, np.eye(10))
    assert counts[i1].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert counts[i2, 1] == 2 and counts[i2, 2] == 1 and counts[i2].sum() == 3
    with store.read() as s:
        known = s.execute(select(Galaxy.idx, Galaxy.known_label).where(Galaxy.known_label.is_not(None))).all()
    for idx, label in known:
        assert counts[idx, label] == 20 and counts[idx].sum() == 20
    untouched = np.setdiff1d(np.arange(len(flat)), [i1, i2, *[k for k, _ in known]])
    assert counts[untouched].sum() == 0


def test_a_refresh_is_claimed_by_one_caller_every_k_votes(store, flat):
    set_refresh_every(store, "sim", 2)
    assert claim_refresh(store, "sim") is None
    for gid, _ in _unknown(store, 2):
        record_classification(store, "v0", gid, [[FLAT_TASK, 1]])
    # one claim per K votes, on both stores: the next caller finds it claimed
    assert claim_refresh(store, "sim") == 2 and claim_refresh(store, "sim") is None
    assert claim_refresh(store, "sim", force=True) == 2


def test_a_late_vote_teaches_and_skill_weighs_votes_where_the_survey_retires_by_skill(store, flat):
    (g1, i1), = _unknown(store, 1)
    rule = RetirementRule(n_votes=2, early_votes=2)
    record_classification(store, "v0", g1, [[FLAT_TASK, 4]], rule=rule)
    record_classification(store, "v1", g1, [[FLAT_TASK, 4]], rule=rule)
    assert record_classification(store, "v2", g1, [[FLAT_TASK, 5]], rule=rule).late
    counts, _ = training_votes(store, "sim", len(flat))
    assert counts[i1, 4] == 2 and counts[i1, 5] == 1      # stored late, never counted toward retirement, still taught
    set_retirement(store, "sim", method="skill")
    weighted, _ = training_votes(store, "sim", len(flat))
    assert weighted[i1, 4] == pytest.approx(1.0)          # no gold answered yet: each vote weighs a coin's 0.5
    assert weighted[i1, 5] == pytest.approx(0.5)


def test_on_the_gz2_tree_a_vote_that_names_no_class_still_teaches_at_the_tasks_it_answers(store, synth_h5):
    from conftest import GZ2_STAR
    from galaxalign.taxonomy import GALAXY10

    survey = load_survey(synth_h5)
    register_survey(store, survey, "gz", workflow="gz2", known_fraction=0.0, gold_fraction=0.0)
    add_volunteer(store, "ada", "volunteer", None)
    add_volunteer(store, "bob", "volunteer", None)
    (g1, i1), (g2, i2) = _unknown(store, 2)
    barred = [list(x) for x in GALAXY10[5].path]                      # Barred Spiral, resolves to its class
    lens = [[t, "t08_lens" if t == "T08" else a] for t, a in
            [("T01", "t01_features"), ("T02", "t02_no"), ("T03", "t03_bar"), ("T04", "t04_no_spiral"),
             ("T05", "t05_no_bulge"), ("T06", "t06_yes"), ("T08", "t08_lens")]]  # a bar, but no Galaxy10 class
    assert record_classification(store, "ada", g1, barred).retired is False
    record_classification(store, "ada", g2, lens)
    record_classification(store, "bob", g2, GZ2_STAR)                 # a star: says nothing the classes differ on
    counts, amap = training_votes(store, "gz", len(survey))
    assert amap is GALAXY10.answer_map() and amap.tasks[0] == tuple(range(10))
    assert counts[i1].sum() == 1 and counts[i1, 5] == 1               # counted once, for its class
    said = {amap.columns[k] for k in np.flatnonzero(counts[i2])}
    assert said == {("T01", "t01_features"), ("T02", "t02_no"), ("T03", "t03_bar")}
    # what a Barred Spiral implies, task by task (every path that resolves to it gives these answers)
    implied = {amap.columns[k] for k in np.flatnonzero(amap.implies[5])}
    assert implied == {("CLASS", "5"), ("T01", "t01_features"), ("T02", "t02_no"), ("T03", "t03_bar")}
    # and the loss of a galaxy with the lens vote prefers Barred Spiral to an unbarred one
    from galaxalign.loss import vote_nll
    logits = torch.full((2, 10), -4.0)
    logits[0, 5] = logits[1, 6] = 4.0                                 # sure of Barred / of Unbarred Tight Spiral
    nll = vote_nll(logits, torch.as_tensor(counts[[i2, i2]]), torch.as_tensor(amap.implies), amap.tasks)
    assert nll[0] < nll[1]


# -- training with vote counts ------------------------------------------------------------------

@pytest.fixture
def ws(tmp_path, synth_h5, monkeypatch):
    monkeypatch.setenv("GALAXALIGN_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GALAXALIGN_DATABASE_URL", raising=False)
    w = Workspace(tmp_path / "ws").create()
    st = open_store(w.database_url)
    register_survey(st, load_survey(synth_h5), "sim", workflow="flat", known_fraction=0.3, gold_fraction=0.05, seed=2)
    for k in range(3):
        add_volunteer(st, f"v{k}", "volunteer", None)
    yield w, st
    st.dispose()


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory, synth_h5):
    """A workspace whose active model ``mm`` (tiny, one epoch a stage) is trained and embedded once for
    the module; each test gets a copy (:func:`trained`)."""
    root = tmp_path_factory.mktemp("template") / "ws"
    w = Workspace(root).create()
    st = open_store(f"sqlite:///{root / 'galaxalign.db'}")
    register_survey(st, load_survey(synth_h5), "sim", workflow="flat", known_fraction=0.3, gold_fraction=0.05, seed=2)
    for k in range(3):
        add_volunteer(st, f"v{k}", "volunteer", None)
    retrain(st, w, None, {"config": _tiny(root.parent / "tiny.yaml"), "name": "mm", "force_activate": True})
    st.dispose()
    return root


@pytest.fixture
def trained(trained_template, tmp_path, monkeypatch):
    w = Workspace(copy_workspace(trained_template, tmp_path / "ws", monkeypatch))
    st = open_store(w.database_url)
    yield w, st
    st.dispose()


def _vote_unknown(st, survey, n_galaxies, votes_each=1, wrong_every=0):
    """Volunteers vote the truth on the first galaxies without a known label (every ``wrong_every``-th wrong)."""
    rule = RetirementRule(n_votes=50, early_votes=50)  # nothing retires: only votes, no consensus labels
    cast = 0
    for gid, idx in _unknown(st, n_galaxies):
        for k in range(votes_each):
            truth = int(survey.labels[idx])
            answer = (truth + 1) % len(survey.class_names) if wrong_every and cast % wrong_every == 0 else truth
            record_classification(st, f"v{k}", gid, [[FLAT_TASK, answer]], rule=rule)
            cast += 1
    return cast


def test_retraining_from_votes_trains_on_galaxies_that_have_no_label_yet(ws, tmp_path, synth_h5):
    w, st = ws
    survey = load_survey(synth_h5)
    cfg = _tiny(tmp_path / "tiny.yaml")
    _vote_unknown(st, survey, 20)
    by_consensus = retrain(st, w, None, {"config": cfg, "name": "cons", "force_activate": True, "from_scratch": True})
    by_votes = retrain(st, w, None, {"config": cfg, "name": "votes", "force_activate": True, "from_scratch": True,
                                     "learn_from": "votes"})
    assert by_consensus["n_consensus_labels"] == 0         # nothing retired ...
    assert by_votes["n_train"] > by_consensus["n_train"]   # ... yet the voted galaxies teach
    rows = [json.loads(x) for x in (w.models / "votes" / "metrics.jsonl").read_text().splitlines()]
    terms = [r["votes"] for r in rows if "votes" in r]
    assert terms and all(np.isfinite(terms)) and all(t > 0 for t in terms)
    assert not any("votes" in r for r in
                   (json.loads(x) for x in (w.models / "cons" / "metrics.jsonl").read_text().splitlines()))


# -- the fast refresh ---------------------------------------------------------------------------

def test_the_refresh_updates_predictions_without_touching_the_weights_file(trained, tmp_path, synth_h5):
    w, st = trained
    survey = load_survey(synth_h5)
    mv = active_model(st)
    ckpt = Path(mv.checkpoint_path) / "model.pt" if Path(mv.checkpoint_path).is_dir() else Path(mv.checkpoint_path)
    assert str(ckpt).startswith(str(w.root))
    sha, mtime = file_sha256(ckpt), ckpt.stat().st_mtime_ns
    with st.read() as s:
        before = {g: p for g, p in s.execute(select(Prediction.galaxy_id, Prediction.probs))}
        assert s.scalar(select(func.count()).where(Prediction.mutual_info.is_not(None))) == 0
    _vote_unknown(st, survey, 30, votes_each=3)
    res = refresh(st, w, None, {"survey": "sim", "heads": 4})
    assert file_sha256(ckpt) == sha and ckpt.stat().st_mtime_ns == mtime   # the weights file untouched
    with st.read() as s:
        after = {g: (p, mi) for g, p, mi in s.execute(select(Prediction.galaxy_id, Prediction.probs,
                                                             Prediction.mutual_info))}
    assert after.keys() == before.keys()
    assert sum(not np.allclose(before[g], after[g][0], atol=1e-4) for g in before) > len(before) // 2
    assert all(mi is not None and 0 <= mi <= 1 for _, mi in after.values())
    assert all(abs(sum(p) - 1) < 1e-3 for p, _ in after.values())
    metrics = active_model(st).metrics
    assert metrics["refresh"]["sim"]["heads"] == 4 and metrics["refresh"]["sim"]["n_taught"] >= 30
    assert 0 <= metrics["proposal"]["confidence_floor"] <= 1 and res["temperature"] > 0
    assert {"accuracy", "ece", "ece_model", "test_accuracy"} <= set(res)
    assert active_model(st).id == mv.id and active_model(st).checkpoint_path == mv.checkpoint_path


def test_votes_pull_the_refreshed_proposal_toward_what_volunteers_said(trained):
    w, st = trained
    rule = RetirementRule(n_votes=50, early_votes=50)
    targets = _unknown(st, 12)
    c = 7  # every volunteer says class 7 for these twelve galaxies, whatever they are
    for gid, _ in targets:
        for k in range(3):
            record_classification(st, f"v{k}", gid, [[FLAT_TASK, c]], rule=rule)
    with st.read() as s:
        p_before = np.mean([s.scalar(select(Prediction.probs).where(Prediction.galaxy_id == g))[c] for g, _ in targets])
    refresh(st, w, None, {"survey": "sim", "heads": 3})
    with st.read() as s:
        p_after = np.mean([s.scalar(select(Prediction.probs).where(Prediction.galaxy_id == g))[c] for g, _ in targets])
    assert p_after > p_before + 0.1, (p_before, p_after)


def test_the_bald_queue_serves_the_galaxy_the_heads_disagree_on(trained, tmp_path):
    w, st = trained
    mv = active_model(st)
    with st.read() as s:
        ids = s.scalars(select(Galaxy.id).where(Galaxy.known_label.is_(None)).order_by(Galaxy.id)).all()
    target = ids[len(ids) // 2]

    def fn(s):
        s.execute(Prediction.__table__.update().where(Prediction.model_version_id == mv.id).values(mutual_info=0.01))
        s.execute(Prediction.__table__.update().where(Prediction.galaxy_id == target).values(mutual_info=0.99))
    st.write(fn)
    served = next_galaxy_for(st, "v0", "sim", np.random.default_rng(0), gold_rate=0.0, randomness=0.0,
                             strategy="bald")
    assert served.id == target


def test_a_refresh_is_claimed_once_every_k_votes_and_queued_as_a_job(trained, tmp_path, synth_h5):
    w, st = trained
    survey = load_survey(synth_h5)
    set_refresh_every(st, "sim", 5)
    _vote_unknown(st, survey, 4)
    assert claim_refresh(st, "sim") is None                   # 4 votes: not yet
    gid, _ = _unknown(st, 5)[4]
    record_classification(st, "v1", gid, [[FLAT_TASK, 2]])   # the fifth vote
    job = maybe_refresh(st, "sim", w)
    assert isinstance(job, int)
    with st.read() as s:
        assert s.get(Job, job).kind == "refresh" and s.get(Job, job).state == "queued"
    assert maybe_refresh(st, "sim", w) is None                # claimed: the next voter queues nothing
    set_refresh_every(st, "sim", 0)
    assert claim_refresh(st, "sim") is None and claim_refresh(st, "sim", force=True) == 5
    with pytest.raises(StoreError, match="refresh every -1 votes"):
        set_refresh_every(st, "sim", -1)


@pytest.mark.parametrize("params, message", [
    ({"heads": 0}, "heads"), ({"pseudo": 1.5}, "pseudo"), ({"survey": "sim", "heads": "five"}, "heads"),
])
def test_refresh_parameters_are_checked_before_any_work(ws, params, message):
    w, st = ws
    assert maybe_refresh(st, "sim", w) is None                # no active model: nothing to refresh
    with pytest.raises(GalaxalignError, match=message):
        enqueue(st, "refresh", params, workspace=w)
    with st.read() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_a_refresh_without_embeddings_ends_in_one_line(trained, tmp_path):
    w, st = trained
    import shutil
    shutil.rmtree(w.embeddings_of("mm", "sim"))
    with pytest.raises(GalaxalignError, match="no embeddings there"):
        refresh(st, w, None, RefreshParams(survey="sim"))


# -- heads, temperature, calibration, BALD ----------------------------------------------------

def test_temperature_scaling_mends_an_overconfident_model():
    rng = np.random.default_rng(0)
    n, c = 4000, 4
    true_logits = rng.normal(0, 1.5, (n, c))
    p_true = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(c, p=p) for p in p_true])
    hot = Heads(np.zeros((1, c, 1), np.float32), np.zeros((1, c), np.float32))
    hot.logits = lambda emb: (3.0 * true_logits[emb.astype(int)[:, 0]])[:, None, :]  # three times too sure
    idx = np.arange(n)[:, None].astype(np.float32)
    t = fit_temperature(lambda t: hot.probs(idx, t).mean(1), y)
    assert 2.4 < t < 3.7
    before = expected_calibration_error(hot.probs(idx, 1.0).mean(1), y)
    after = expected_calibration_error(hot.probs(idx, t).mean(1), y)
    assert after < 0.03 < before


def test_mutual_information_is_zero_when_heads_agree_and_high_when_they_disagree():
    agree = np.tile([[0.7, 0.2, 0.1]], (1, 5, 1))
    split = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]]], float)
    unsure = np.tile([[1 / 3] * 3], (1, 5, 1))   # as uncertain as can be, but every head says the same
    mi = mutual_information(np.concatenate([agree, split, unsure]))
    assert mi[0] == pytest.approx(0, abs=1e-9) and mi[2] == pytest.approx(0, abs=1e-9)
    assert mi[1] > 0.9


def test_heads_start_from_the_model_and_bootstrap_differs():
    rng = np.random.default_rng(1)
    protos = np.eye(3, 8, dtype=np.float32)
    emb = rng.normal(size=(200, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    none = fit_heads(emb, np.zeros((200, 3), np.float32), protos, scale=10.0, n_heads=3)
    assert np.allclose(none.weight, 10.0 * protos[None]) and np.allclose(none.bias, 0)   # no votes: the model
    counts = np.zeros((200, 3), np.float32)
    counts[np.arange(100), emb[:100, 3:6].argmax(1)] = 3   # volunteers follow another direction than the model
    heads = fit_heads(emb, counts, protos, scale=10.0, n_heads=3)
    acc = (heads.probs(emb[100:]).mean(1).argmax(1) == emb[100:, 3:6].argmax(1)).mean()
    assert acc > 0.6 and not np.allclose(heads.weight[0], heads.weight[1])
    pseudo = pseudo_votes(np.array([[0.99, 0.01, 0], [0.5, 0.5, 0]]), np.zeros((2, 3)), 0.95)
    assert pseudo.tolist() == [[1, 0, 0], [0, 0, 0]]


def test_fixmatch_teaches_from_galaxies_nobody_voted_on(ws, tmp_path):
    w, st = ws
    cfg = _tiny(tmp_path / "semi.yaml", semi_threshold=0.05)    # a tiny model is never sure: a low bar here
    res = retrain(st, w, None, {"config": cfg, "name": "semi", "force_activate": True, "semi": True})
    rows = [json.loads(x) for x in (w.models / "semi" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if "semi" in r]
    assert epochs and all(np.isfinite(r["semi"]) for r in epochs)
    assert max(r["semi_kept"] for r in epochs) > 0                 # some pseudo-labels passed the bar
    with st.read() as s:                                             # the unlabelled galaxies are not "trained on"
        known = s.scalar(select(func.count()).where(Galaxy.known_label.is_not(None)))
    assert res["n_train"] < known


def test_the_prior_is_chosen_on_held_out_galaxies():
    from galaxalign.heads import choose_prior

    rng = np.random.default_rng(2)
    protos = np.eye(3, 6, dtype=np.float32)
    emb = rng.normal(size=(600, 6)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    truth = emb[:, 3:6].argmax(1)                                    # the sky disagrees with the model
    counts = np.zeros((600, 3), np.float32)
    counts[np.arange(400), truth[:400]] = 4
    many = choose_prior(emb[:400], counts[:400], protos, 10.0, emb[400:], truth[400:])
    assert many <= 10                                                # many votes against the model: follow them
    right = emb[:, :3].argmax(1)                                     # ... and when the model is right and votes few
    few = np.zeros((600, 3), np.float32)
    few[np.arange(3), rng.integers(0, 3, 3)] = 1                     # three random votes
    assert choose_prior(emb[:400], few[:400], protos, 10.0, emb[400:], right[400:]) >= 100


def test_refresh_from_the_command_line(trained, tmp_path):
    from test_cli import here

    w, st = trained
    r = here("refresh", "--workspace", w.root, "--survey", "sim", "--heads", "2", "--wait")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["heads"] == 2
    r = here("refresh", "--workspace", w.root, "--survey", "sim", "--every", "25", "--queue", "bald")
    assert r.returncode == 0 and "every 25 new votes" in r.stdout and "puts bald first" in r.stdout
    for args, message in ((("--every", "-3"), "refresh every -3 votes"), (("--queue", "best"), "queue strategy 'best'"),
                          (("--survey", "nowhere"), "nowhere"), (("--heads", "0"), "heads")):
        r = here("refresh", "--workspace", w.root, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr


def test_training_takes_tree_task_votes_of_galaxies_that_have_no_class(tmp_path, synth_h5):
    from galaxalign.taxonomy import GALAXY10
    from galaxalign.train import load_config, train

    survey = load_survey(synth_h5)
    amap = GALAXY10.answer_map()
    labels = np.full(len(survey), -1)
    labels[:20] = survey.labels[:20]                                  # a few labelled galaxies
    counts = np.zeros((len(survey), len(amap.columns)), np.float32)
    counts[20:40, amap.column("T01", "t01_smooth")] = 3               # votes that name no class, only "smooth"
    counts[20:40, amap.column("T07", "t07_round")] = 2
    cfg = load_config(_tiny(tmp_path / "tiny.yaml"))
    res = train(cfg, survey=survey, out_dir=tmp_path / "run", labels=labels, train_idx=np.arange(50),
                test_idx=np.arange(50, 60), votes=counts, vote_map=amap, show_bar=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["votes"]) and r["votes"] > 0 for r in rows if "votes" in r)
    assert res["metrics"]["accuracy"] >= 0
    with pytest.raises(GalaxalignError, match="do not fit"):
        train(cfg, survey=survey, out_dir=tmp_path / "bad", labels=labels, votes=counts[:, :10], vote_map=amap)
