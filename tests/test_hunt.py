"""Rare-object hunts: the ranking and its relevance feedback, and the grid's decisions as stored votes."""
import threading

import numpy as np
import pandas as pd
import pytest

from galaxalign.data import load_survey
from galaxalign.hunt import HuntError, hunt_figures, rank, start_query
from galaxalign.store import (NotFound, StoreError, add_volunteer, create_hunt, hunt_votes, list_hunts,
                              record_hunt_votes, register_survey)


def clusters(n=200, rare=6, dim=16, seed=0):
    """Unit embeddings: a tight rare cluster (rows 0..rare-1) inside a broad common cloud."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, dim))
    centre = rng.normal(size=dim) * 3
    z[:rare] = centre + 0.3 * rng.normal(size=(rare, dim))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def test_rank_finds_the_rare_cluster_from_one_example_and_never_repeats():
    z = clusters()
    q = start_query(z, np.array([f"g{i}" for i in range(len(z))]), None, {"examples": ["g0"]})
    top = rank(z, q, exclude=[0], k=5)
    assert set(top) == {1, 2, 3, 4, 5}
    again = rank(z, q, confirmed=[1, 2], rejected=[], exclude=[0, *top], k=5)
    assert not set(again) & {0, *top} and len(again) == 5
    # rejected galaxies push the query away from where they lie
    z2 = clusters(seed=1)
    q2 = z2[0]
    near_rejected = rank(z2, q2, rejected=[1, 2, 3], exclude=[0, 1, 2, 3], k=2)
    plain = rank(z2, q2, exclude=[0, 1, 2, 3], k=2)
    assert (z2[near_rejected] @ z2[1:4].mean(0)).mean() <= (z2[plain] @ z2[1:4].mean(0)).mean()
    # the classifier term: a galaxy the model calls the target class comes up
    probs = np.zeros((len(z), 2))
    probs[150, 1] = 1.0
    assert 150 in rank(z, q, probs=probs, target_class=1, exclude=[0], k=6, classifier_weight=5.0)
    with pytest.raises(HuntError, match="example galaxy 'nope' has no embedding"):
        start_query(z, np.array([f"g{i}" for i in range(len(z))]), None, {"examples": ["nope"]})


def test_hunt_figures_count_purity_and_completeness():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    votes = pd.DataFrame({"id_str": list("abcd"), "idx": [0, 4, 1, 5], "confirmed": [1, 1, 1, 0],
                          "rejected": [0, 0, 0, 1], "first_round": [0, 0, 1, 1],
                          "status": ["confirmed", "confirmed", "confirmed", "rejected"]})
    r0, r1 = hunt_figures(votes, truth, 1)
    assert (r0["purity"], r0["completeness"]) == (0.5, 0.25)
    assert (r1["purity"], r1["completeness"], r1["shown"]) == (2 / 3, 0.5, 4)


def test_a_hunts_grid_votes_are_stored_once_each(store, synth_h5):
    survey = load_survey(synth_h5)
    register_survey(store, survey, "flat", workflow="flat", known_fraction=0.0, gold_fraction=0.0)
    for name in ("ada", "bob"):
        add_volunteer(store, name, "volunteer", None)
    hid = create_hunt(store, "flat", "cigars", {"examples": [survey.id_str[3]], "target_class": 4}, created_by="ada")
    assert [h.name for h in list_hunts(store, "flat")] == ["cigars"]
    grid = {survey.id_str[i]: i % 3 == 0 for i in range(10, 34)}
    assert record_hunt_votes(store, hid, "ada", grid, round=0) == 24
    assert record_hunt_votes(store, hid, "ada", grid, round=0) == 0    # the same grid sent twice: nothing doubled
    # two volunteers sending grids at the same moment: every decision lands, none twice
    other = {survey.id_str[i]: True for i in range(20, 44)}
    written = []
    threads = [threading.Thread(target=lambda w=w, g=g: written.append(record_hunt_votes(store, hid, w, g, round=1)))
               for w, g in (("bob", other), ("bob", other), ("ada", other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(written) == [0, 10, 24]  # bob's second send doubled nothing; ada had 14 of the 24 already
    df = hunt_votes(store, hid)
    assert int((df.confirmed + df.rejected).sum()) == 24 + 24 + 10
    row = df.set_index("id_str").loc[survey.id_str[22]]  # ada rejected it in round 0, bob confirmed it
    assert (row.confirmed, row.rejected, row.first_round, row.status) == (1, 1, 0, "rejected")


def test_bad_hunts_are_refused_and_write_nothing(store, synth_h5):
    survey = load_survey(synth_h5)
    register_survey(store, survey, "flat", workflow="flat")
    add_volunteer(store, "ada", "volunteer", None)
    for query, msg in (({}, "start it from example galaxies, a text or a symbol"),
                       ({"examples": ["nope"]}, "example galaxy 'nope' is not in survey 'flat'"),
                       ({"text": "rings", "target_class": 99}, "target class 99 is not a class"),
                       ({"text": "rings", "colour": "red"}, "unknown query key")):
        with pytest.raises(StoreError, match=msg):
            create_hunt(store, "flat", "h1", query)
    assert list_hunts(store) == []
    hid = create_hunt(store, "flat", "h1", {"text": "rings"})
    with pytest.raises(StoreError, match="already exists"):
        create_hunt(store, "flat", "h1", {"text": "rings"})
    with pytest.raises(NotFound, match="galaxy 'nope' is not in the survey of hunt 'h1'"):
        record_hunt_votes(store, hid, "ada", {survey.id_str[0]: True, "nope": False})
    with pytest.raises(StoreError, match="expected"):
        record_hunt_votes(store, hid, "ada", {survey.id_str[0]: "yes"})
    assert hunt_votes(store, hid).empty  # the grid with one bad galaxy wrote nothing


def test_the_next_grid_leaves_out_the_decided_and_the_examples_and_follows_the_decisions():
    """The Hunt page's ranking, without Streamlit: decided galaxies and the examples never come back; a
    confirmed galaxy pulls its neighbours up; rounds count from 0; a form's blanks are left out."""
    from galaxalign.hunt import hunt_query, next_grid, next_round

    rng = np.random.default_rng(0)
    centres = np.eye(4, 8, dtype=np.float32) * 5
    emb = np.concatenate([c + rng.normal(0, 0.3, (10, 8)) for c in centres]).astype(np.float32)  # 4 blobs of 10
    ids = np.array([f"g{i}" for i in range(40)])
    query = hunt_query([" g0 ", "", "g1"], "  ", None, None)
    assert query == {"examples": ["g0", "g1"]}
    q0 = emb[[0, 1]].mean(0)
    none = pd.DataFrame({"idx": pd.Series([], dtype=int), "status": pd.Series([], dtype=object),
                         "first_round": pd.Series([], dtype=int)})
    first = next_grid(emb, ids, q0, None, query, none, k=8)
    assert not {0, 1} & set(first) and set(first) == set(range(2, 10))  # blob 0, the examples left out
    assert next_round(none) == 0
    decided = pd.DataFrame({"idx": list(range(2, 10)) + [20], "status": ["rejected"] * 8 + ["confirmed"],
                            "first_round": [0] * 9})
    second = next_grid(emb, ids, q0, None, query, decided, k=5)
    assert not set(second) & (set(range(10)) | {20})  # decided (and the examples) never come back
    assert set(second) <= set(range(20, 30))  # moved toward the confirmed galaxy's blob, away from blob 0
    assert next_round(decided) == 1
