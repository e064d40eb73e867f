"""The science loop: simulated campaigns through the real queue, store and re-training job; the blind
control that measures anchoring; queue strategies."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select

from galaxalign.data import load_survey
from galaxalign.simulate import CampaignCfg, CampaignError, SimVolunteer, confusion_for, run_campaign
from galaxalign.store import (FLAT_TASK, RetirementRule, add_volunteer, anchoring_estimate, export_classifications,
                              get_galaxy, is_blind, next_galaxy_for, record_classification, register_model,
                              register_survey)
from galaxalign.store.models import Classification, Prediction


def test_blind_tasks_are_a_stable_fraction_of_all_tasks():
    flags = [is_blind(0.1, v, g) for v in range(40) for g in range(250)]
    assert 0.08 < np.mean(flags) < 0.12
    assert flags == [is_blind(0.1, v, g) for v in range(40) for g in range(250)]  # the same on every load
    assert not any(is_blind(0.0, v, g) for v in range(10) for g in range(10))


@pytest.mark.parametrize("habit", [0.0, 0.6])
def test_the_anchoring_habit_is_recovered_from_the_blind_control(store, synth_h5, tmp_path, habit):
    """Volunteers who take a shown proposal with probability `habit`: the estimate's interval holds it."""
    survey = load_survey(synth_h5)
    register_survey(store, survey, "flat", workflow="flat", known_fraction=1.0, gold_fraction=0.0)
    (tmp_path / "m.pt").write_bytes(b"x")
    mid = register_model(store, "model", str(tmp_path / "m.pt"), {}, {})
    rng = np.random.default_rng(4)
    truth, k = survey.labels, len(survey.class_names)
    no_retire = RetirementRule(n_votes=1000, early_votes=1000)
    for i in range(14):
        vol = SimVolunteer(f"v{i}", "average", confusion_for("average", k, rng), anchoring=habit)
        vid = add_volunteer(store, vol.name, "volunteer", None)
        for idx in range(len(survey)):
            g = get_galaxy(store, survey.id_str[idx], "flat")
            wrong = idx % 2 == 0  # the model is wrong on half of the galaxies
            proposal = (int((truth[idx] + 1) % k) if wrong else int(truth[idx]), 0.9)
            blind = is_blind(0.3, vid, g.id)
            answer = vol.answer(int(truth[idx]), None if blind else proposal[0], rng)
            record_classification(store, vol.name, g.id, [[FLAT_TASK, answer]], proposal=proposal,
                                  model_version_id=mid, blind=blind, rule=no_retire)
    est = anchoring_estimate(store, "flat")
    assert est["n_blind"] > 150 and est["n_shown"] > 400
    lo, hi = est["anchoring_ci"]
    assert lo <= habit <= hi and hi - lo < 0.3, {k: v for k, v in est.items() if "follow" in k or "anch" in k or "wrong" in k}
    assert est["model_agreement_shown"] > est["model_agreement_blind"] if habit else True
    # the control is exported: Zooniverse metadata says whether the proposal was shown
    meta = [json.loads(m) for m in export_classifications(store, "flat").metadata]
    assert {m["blind"] for m in meta} == {True, False}
    assert all(m["proposal_shown"] == (not m["blind"]) for m in meta)
    with store.read() as s:  # a blind vote keeps the hidden proposal but is never "accepted"
        assert s.scalar(select(func.count()).select_from(Classification).where(
            Classification.blind.is_(True), Classification.accepted.is_not(None))) == 0


def test_queue_strategies_are_checked(store, synth_h5):
    register_survey(store, load_survey(synth_h5), "flat", workflow="flat", known_fraction=0.0, gold_fraction=0.0)
    add_volunteer(store, "ada", "volunteer", None)
    for strategy in ("entropy", "margin", "disagreement", "bald", "random"):
        assert next_galaxy_for(store, "ada", "flat", np.random.default_rng(0), strategy=strategy) is not None
    with pytest.raises(Exception, match="queue strategy 'best' must be one of entropy, margin, disagreement, bald, "
                                        "random"):
        next_galaxy_for(store, "ada", "flat", strategy="best")


def test_bad_campaign_settings_are_one_line():
    with pytest.raises(CampaignError, match="strategy 'best'"):
        CampaignCfg(strategy="best").check()
    with pytest.raises(CampaignError, match="volunteer kind 'robot'"):
        CampaignCfg(crew=("robot",)).check()
    with pytest.raises(CampaignError, match="at least one round"):
        CampaignCfg(rounds=0).check()


def test_a_campaign_runs_through_the_real_loop(tmp_path, synth_h5, monkeypatch):
    from galaxalign.store import list_model_versions, open_store
    from galaxalign.workspace import Workspace

    monkeypatch.delenv("GALAXALIGN_DATABASE_URL", raising=False)
    w = Workspace(tmp_path / "ws").create()
    store = open_store(w.database_url)
    register_survey(store, load_survey(synth_h5), "sim", workflow="flat", known_fraction=0.3, gold_fraction=0.05)
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump({"model": {"arch": "galaxalign-tiny"}, "stage1_epochs": 1, "stage2_epochs": 1,
                                        "batch_size": 8, "warmup_steps": 2, "symbol_variants": 3}))
    cfg = CampaignCfg(rounds=2, votes_per_round=30, strategy="disagreement", anchoring=0.5, blind_fraction=0.5,
                      seed=3, retrain={"config": str(cfg_path)}, gate={"confidence_floor": 0.0, "ood_max": 1e9},
                      retirement={"model_votes": 2.0})
    res = run_campaign(store, w, "sim", cfg, progress=False)
    assert [r["round"] for r in res["rounds"]] == [0, 1, 2]
    assert [r["human_votes"] for r in res["rounds"]] == [0, 30, 60]
    assert all(0 <= r["model_accuracy"] <= 1 for r in res["rounds"])
    with store.read() as s:  # every simulated vote is an ordinary stored vote, none lost or doubled
        assert s.scalar(select(func.count()).select_from(Classification)) == 60
        blind = s.scalars(select(Classification.blind)).all()
    assert {True, False} <= set(blind) | {None}
    assert [m.name for m in list_model_versions(store)] == ["sim3-r0", "sim3-r1", "sim3-r2"]
    df = pd.DataFrame(res["rounds"])
    assert df.retired.is_monotonic_increasing
    # the model counted as two volunteers retired galaxies with one human vote, and says so
    last = res["rounds"][-1]
    assert sum(last["retired_by"].values()) == last["retired"] and last["retired_by"].get("consensus_with_model", 0) > 0
    with store.read() as s:  # the disagreement queue had its scores
        assert s.scalar(select(func.count()).select_from(Prediction).where(Prediction.disagreement.is_not(None))) > 0
    store.dispose()
