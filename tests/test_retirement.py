"""Skill that changes decisions: SWAP-style retirement, the model counted as k volunteers, Dawid–Skene
consensus, the decaying gold rate, and the BALD-like queue."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from galaxalign.data import load_survey
from galaxalign.inference import head_disagreement
from galaxalign.store import (FLAT_TASK, RetirementRule, StoreError, activate_model, add_volunteer, consensus_labels,
                              get_galaxy, gold_rate_for, next_galaxy_for, record_classification, register_model,
                              register_survey, set_proposal_gate, set_retirement, store_predictions)
from galaxalign.store.models import Galaxy
from galaxalign.store.retirement import confusion_from_gold, decide

NO_RETIRE = RetirementRule(n_votes=1000, early_votes=1000, skill_min_votes=1000)


def vote(store, who, galaxy, cls, rule=None):
    return record_classification(store, who, galaxy, [[FLAT_TASK, int(cls)]], rule=rule)


@pytest.fixture
def crew(store, synth_h5):
    """A flat survey whose first 30 galaxies are gold; two experts answer them right, two spammers
    answer the next class (always wrong)."""
    survey = load_survey(synth_h5)
    register_survey(store, survey, "flat", workflow="flat", known_fraction=1.0, gold_fraction=0.0)
    k = len(survey.class_names)
    store.write(lambda s: s.execute(update(Galaxy).where(Galaxy.idx < 30).values(gold=True)))
    for name in ("exp1", "exp2", "spam1", "spam2"):
        add_volunteer(store, name, "volunteer", None)
    for idx in range(30):
        g = survey.id_str[idx]
        t = int(survey.labels[idx])
        for name in ("exp1", "exp2"):
            vote(store, name, g, t, NO_RETIRE)
        for name in ("spam1", "spam2"):
            vote(store, name, g, (t + 1) % k, NO_RETIRE)
    return survey, k


def unlabelled_with_a_model(store, synth_h5, tmp_path):
    """A flat survey with no known labels, one volunteer (ada) and an active model (no predictions yet)."""
    survey = load_survey(synth_h5)
    register_survey(store, survey, "flat", workflow="flat", known_fraction=0.0, gold_fraction=0.0)
    add_volunteer(store, "ada", "volunteer", None)
    (tmp_path / "m.pt").write_bytes(b"x")
    mid = register_model(store, "m1", str(tmp_path / "m.pt"), {}, {})
    activate_model(store, mid)
    return survey, mid


def test_skill_weighted_retirement_differs_from_the_plain_one(store, crew):
    survey, k = crew
    a, b = 2, 5
    # galaxy 30: the two spammers say b, one expert says a
    g30, g31 = survey.id_str[30], survey.id_str[31]
    for who, cls in (("spam1", b), ("spam2", b), ("exp1", a)):
        plain = vote(store, who, g30, cls)
    assert plain.consensus_label == b and not plain.retired  # majority: b, 2 of 3
    df = consensus_labels(store, "flat", method="majority")
    assert int(df.set_index("id_str").consensus_label[g30]) == b
    set_retirement(store, "flat", method="skill")
    # the same three answers under skill: the experts' gold record outweighs two spammers
    for who, cls in (("spam1", b), ("spam2", b), ("exp1", a)):
        skilled = vote(store, who, g31, cls)
    assert skilled.consensus_label == a and skilled.retired and get_galaxy(store, g31).retired_reason == "skill"
    # and two experts who agree retire a galaxy at two votes, where the plain rule needs three
    g32 = survey.id_str[32]
    vote(store, "exp1", g32, a)
    assert vote(store, "exp2", g32, a).retired
    set_retirement(store, "flat", method="majority")
    g33 = survey.id_str[33]
    vote(store, "exp1", g33, a)
    assert not vote(store, "exp2", g33, a).retired


def test_dawid_skene_consensus_follows_the_gold_record(store, crew):
    survey, k = crew
    g = survey.id_str[40]
    for who, cls in (("spam1", 5), ("spam2", 5), ("exp1", 2)):
        vote(store, who, g, cls, NO_RETIRE)
    ds = consensus_labels(store, "flat", method="dawid_skene").set_index("id_str")
    mj = consensus_labels(store, "flat").set_index("id_str")
    assert int(mj.consensus_label[g]) == 5
    # the spammers always answer the class after the true one: Dawid–Skene reads their 5 as a 4, and
    # the expert's 2 disagrees — whatever it concludes, it is not the majority's 5
    assert int(ds.consensus_label[g]) != 5
    assert abs(sum(ds.loc[g, [f"frac_{c}" for c in range(k)]]) - 1) < 1e-6
    with pytest.raises(StoreError, match="consensus method 'vote' must be one of majority, weighted, dawid_skene"):
        consensus_labels(store, "flat", method="vote")


def test_the_model_counts_as_k_volunteers_only_when_its_gate_passes(store, synth_h5, tmp_path):
    survey, mid = unlabelled_with_a_model(store, synth_h5, tmp_path)
    n, k = len(survey), len(survey.class_names)
    probs = np.full((n, k), 0.02 / (k - 1))
    probs[np.arange(n), 3] = 0.98          # sure of class 3 everywhere …
    probs[:5] = 1.0 / k                    # … but the first five: unsure, below the gate
    store_predictions(store, mid, "flat", probs)
    set_proposal_gate(store, mid, confidence_floor=0.5)
    set_retirement(store, "flat", model_votes=2.0)
    r = vote(store, "ada", survey.id_str[10], 3)             # a human agrees with a confident model
    assert r.retired and get_galaxy(store, survey.id_str[10]).retired_reason == "consensus_with_model"
    assert not vote(store, "ada", survey.id_str[11], 1).retired  # a human disagrees: 2 model votes to 1
    assert not vote(store, "ada", survey.id_str[0], 3).retired   # below the gate the model does not vote
    set_retirement(store, "flat", model_votes=0.0)
    assert not vote(store, "ada", survey.id_str[12], 3).retired  # k = 0: the plain rule


def test_retirement_settings_are_checked_and_kept(store, synth_h5):
    register_survey(store, load_survey(synth_h5), "flat", workflow="flat")
    assert set_retirement(store, "flat", method="skill", skill_threshold=0.9)["skill_threshold"] == 0.9
    assert set_retirement(store, "flat", model_votes=1.5)["method"] == "skill"  # the rest kept
    for bad, msg in (({"method": "vote"}, "retirement method 'vote' must be one of majority, skill"),
                     ({"n_votes": 0}, "retirement n_votes 0"), ({"model_votes": -1}, "retirement model_votes -1"),
                     ({"early_votes": 9}, "cannot exceed n_votes"), ({"speed": 1}, "unknown setting")):
        with pytest.raises(StoreError, match=msg):
            set_retirement(store, "flat", **bad)
    assert set_retirement(store, "flat")["model_votes"] == 1.5  # a refusal wrote nothing


def test_decide_by_hand():
    k = 4
    expert = confusion_from_gold([(t, t) for t in range(4)] * 3, k, 0.7)
    spammer = confusion_from_gold([(t, (t + 1) % 4) for t in range(4)] * 3, k, 0.7)
    skill = RetirementRule(method="skill")
    d = decide(skill, [1, 1, 0], k, [spammer, spammer, expert])
    assert d.label == 0  # the spammers' 1 means a 0: everything agrees on 0
    assert decide(RetirementRule(), [1, 1, 0], k).label == 1
    # no votes: nothing; all "no class": no label
    assert decide(skill, [], k) == decide(RetirementRule(), [], k)
    assert decide(skill, [None, None], k).label is None
    # a newcomer's row is the prior; a spammer's row is near uniform on classes never seen
    assert np.allclose(confusion_from_gold([], k, 0.7).diagonal(), 0.7)
    assert confusion_from_gold([(0, 1)] * 10, k, 0.7)[2, 2] < 0.3


def test_gold_rate_decays_with_what_a_volunteer_has_answered(store, synth_h5):
    assert gold_rate_for(0) == pytest.approx(0.3)
    rates = [gold_rate_for(n) for n in range(0, 60, 5)]
    assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] > 0.03
    survey = load_survey(synth_h5)
    register_survey(store, survey, "flat", workflow="flat", known_fraction=1.0, gold_fraction=0.5)
    add_volunteer(store, "new", "volunteer", None)
    add_volunteer(store, "old", "volunteer", None)
    gold_ids = [g for g in survey.id_str if get_galaxy(store, g).gold]
    for g in gold_ids[:25]:  # the veteran has answered 25 gold galaxies
        vote(store, "old", g, 0, NO_RETIRE)

    def gold_share(who):
        rng = np.random.default_rng(0)
        picks = [next_galaxy_for(store, who, "flat", rng) for _ in range(300)]
        return np.mean([p.gold for p in picks])
    # the queue's own choice also lands on gold sometimes; the extra rate is what differs
    assert gold_share("new") > gold_share("old") + 0.1


def test_the_disagreement_queue_asks_where_the_two_heads_part(store, synth_h5, tmp_path):
    survey, mid = unlabelled_with_a_model(store, synth_h5, tmp_path)
    n, k = len(survey), len(survey.class_names)
    dis = np.linspace(0, 0.5, n)
    dis[17] = 0.99
    store_predictions(store, mid, "flat", np.full((n, k), 1.0 / k), disagreement=dis)
    g = next_galaxy_for(store, "ada", "flat", np.random.default_rng(0), gold_rate=0.0, randomness=0.0,
                        strategy="disagreement")
    assert g.idx == 17
    with pytest.raises(StoreError, match="disagreements cover 3 galaxies"):
        store_predictions(store, mid, "flat", np.full((n, k), 1.0 / k), disagreement=np.zeros(3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8), st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8))
def test_head_disagreement_is_a_bounded_symmetric_divergence(a, b):
    m = min(len(a), len(b))
    p = np.asarray(a[:m]) / sum(a[:m])
    q = np.asarray(b[:m]) / sum(b[:m])
    d = head_disagreement(p[None], q[None])[0]
    assert 0.0 <= d <= 1.0
    assert d == pytest.approx(head_disagreement(q[None], p[None])[0])
    assert head_disagreement(p[None], p[None])[0] == pytest.approx(0.0, abs=1e-9)
    assert head_disagreement(np.eye(m)[:1], np.eye(m)[1:2])[0] == pytest.approx(1.0)


def test_rendered_gold_is_served_and_counts_for_skill(store, synth_h5, tmp_path):
    from galaxalign.importer import SurveyImportError, inject_gold
    from galaxalign.store import get_survey, get_volunteer, skill_weights
    from galaxalign.workspace import Workspace

    ws = Workspace(tmp_path / "ws").create()
    register_survey(store, load_survey(synth_h5), "real", workflow="flat", known_fraction=0.0, gold_fraction=0.0)
    add_volunteer(store, "ada", "volunteer", None)
    assert next_galaxy_for(store, "ada", "real", np.random.default_rng(0), gold_rate=1.0).gold is False  # none yet
    res = inject_gold(store, ws, "real", n=6, seed=5)
    gold_row = get_survey(store, "real-gold")
    assert res["galaxies"] == 6 and get_survey(store, "real").gold_from_id == gold_row.id
    truth = load_survey(gold_row.path).labels
    for _ in range(3):  # gold tasks now come from the rendered survey …
        g = next_galaxy_for(store, "ada", "real", np.random.default_rng(1), gold_rate=1.0)
        assert g.gold and g.survey_id == gold_row.id
        vote(store, "ada", g.id, int(truth[g.idx]))
    # … and count for the real survey's skill: three right of three
    assert skill_weights(store, "real") == {get_volunteer(store, "ada").id: (3 + 1) / (3 + 2)}
    with pytest.raises(SurveyImportError, match="already takes gold"):
        inject_gold(store, ws, "real", n=2)
    with pytest.raises(SurveyImportError, match="n 0 must be a whole number"):
        inject_gold(store, ws, "real-gold", n=0)
