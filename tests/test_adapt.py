"""Adapting a model to another survey (galaxalign.adapt and the ``adapt`` job): the domain AUC, the
alignment terms, and a job that never touches the active model."""
import os
import signal
import time

import numpy as np
import pytest
import torch

from galaxalign.adapt import AdaptCfg, domain_auc, mmd, ot_distance
from galaxalign.errors import GalaxalignError


def test_domain_auc_is_half_for_one_world_and_one_for_two():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    assert abs(domain_auc(a, b) - 0.5) < 0.1
    assert domain_auc(a, b + 2.0) > 0.97
    with pytest.raises(GalaxalignError, match="at least 10 galaxies"):
        domain_auc(a[:5], b)


def test_alignment_terms_vanish_on_one_distribution_and_grow_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 8, generator=g)
    assert ot_distance(a, a).item() == pytest.approx(0.0, abs=1e-6)
    shifted = a + torch.tensor([3.0] + [0.0] * 7)
    assert ot_distance(a, shifted).item() > 0.1
    assert mmd(a, a).item() == pytest.approx(0.0, abs=1e-6) and mmd(a, shifted).item() > 0.1
    shifted.requires_grad_(True)
    ot_distance(a, shifted).backward()  # differentiable through the cost matrix
    assert shifted.grad is not None and shifted.grad.abs().sum() > 0


def test_bad_adapt_settings_are_refused():
    with pytest.raises(GalaxalignError, match="align must be one of none, ot, mmd"):
        AdaptCfg(align="coral").check()


@pytest.fixture
def two_surveys(workspace, tmp_path):
    """The app workspace (a starter trained on the demo survey) plus a second survey seen through HST."""
    from galaxalign.data import load_survey
    from galaxalign.sky import Nuisance
    from galaxalign.store import open_store, register_survey
    from galaxalign.synth import synth_survey
    from galaxalign.workspace import Workspace

    path = tmp_path / "hst.h5"
    synth_survey(path, n=48, size=32, seed=9, workers=1, progress=False,
                 nuisance=Nuisance().but(band_sets=("hst",), psf_families=("optical",)))
    w = Workspace(workspace)
    store = open_store(w.database_url)
    register_survey(store, load_survey(path), "hst", known_fraction=0.0, gold_fraction=0.0)
    yield w, store
    store.dispose()


def test_the_adapt_job_registers_a_candidate_and_leaves_the_active_model(two_surveys):
    from galaxalign.jobs import adapt
    from galaxalign.store import active_model, list_model_versions
    from galaxalign.store.models import Prediction

    w, store = two_surveys
    before = active_model(store)
    res = adapt(store, w, None, {"survey": "hst", "epochs": 1, "align": "ot", "name": "to-hst"})
    assert 0 <= res["domain_auc_before"] <= 1 and 0 <= res["domain_auc_after"] <= 1
    assert res["source"] == "demo" and res["target"] == "hst" and len(res["history"]) == 1
    after = active_model(store)
    assert (after.id, after.sha256) == (before.id, before.sha256)
    versions = {m.name: m for m in list_model_versions(store)}
    assert versions["to-hst"].status == "candidate" and versions["to-hst"].metrics["align"] == "ot"
    with store.read() as s:
        preds = s.query(Prediction).filter(Prediction.model_version_id == versions["to-hst"].id).all()
    assert len(preds) == 48 and all(p.ood is not None for p in preds)
    # the target's labelled galaxies score the adaptation: the active model before, the candidate after
    from galaxalign.inference import evaluate_model
    from galaxalign.surveys import open_survey
    from galaxalign.model import load_model

    hst = open_survey(store, "hst").survey
    m = versions["to-hst"].metrics
    assert m["target_scored"] == 48
    assert m["target_accuracy_before"] == pytest.approx(
        evaluate_model(load_model(before.checkpoint_path), hst)["accuracy"], abs=1 / 48 + 1e-9)
    assert m["target_accuracy_after"] == pytest.approx(
        evaluate_model(load_model(versions["to-hst"].checkpoint_path), hst)["accuracy"], abs=1 / 48 + 1e-9)


def test_an_adaptation_is_scored_only_on_labelled_galaxies_of_the_models_classes():
    from types import SimpleNamespace

    from galaxalign.jobs import target_truth

    model = SimpleNamespace(class_names=["a", "b"])
    labels = np.array([0, -1, 1, 1, -1, 0])
    assert target_truth(model, SimpleNamespace(class_names=["a", "b"], labels=labels), 0).tolist() == [0, 2, 3, 5]
    assert len(target_truth(model, SimpleNamespace(class_names=["FRI", "FRII"], labels=labels), 0)) == 0
    few = target_truth(model, SimpleNamespace(class_names=["a", "b"], labels=np.zeros(5000, int)), 3, limit=100)
    assert len(few) == 100 and len(set(few.tolist())) == 100 and (np.diff(few) > 0).all()


def test_adapting_a_model_to_its_own_survey_is_refused(two_surveys):
    from galaxalign.jobs import adapt

    w, store = two_surveys
    with pytest.raises(GalaxalignError, match="was trained on 'demo': nothing to adapt to"):
        adapt(store, w, None, {"survey": "demo"})


def test_an_adapt_job_killed_mid_way_changes_nothing(two_surveys):
    from test_jobs import start_worker, stop, wait_for

    from galaxalign.jobs import enqueue
    from galaxalign.store import active_model, get_job, list_model_versions

    w, store = two_surveys
    before = active_model(store)
    names = [m.name for m in list_model_versions(store)]
    worker = start_worker(w, GALAXALIGN_HEARTBEAT_SECONDS="0.5", GALAXALIGN_STALE_AFTER_SECONDS="3")
    try:
        jid = enqueue(store, "adapt", {"survey": "hst", "epochs": 400}, workspace=w)
        wait_for(lambda: get_job(store, jid).progress > 0.05, timeout=300)  # adapting
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(20)
    finally:
        stop(worker)
    time.sleep(4)
    from galaxalign.jobs import reap_stale_jobs

    left = list(w.models.glob(".partial-*"))
    assert jid in reap_stale_jobs(store, stale_after=3, workspace=w)
    assert not list(w.models.glob(".partial-*")), f"the killed job's half-written folder stayed: {left}"
    after = active_model(store)
    assert (after.id, after.sha256) == (before.id, before.sha256)
    assert [m.name for m in list_model_versions(store)] == names
