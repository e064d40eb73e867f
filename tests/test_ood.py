"""Out-of-distribution scores and the proposal gate (galaxalign.ood), and their path through training,
the checkpoint and the embedding job."""
import json

import numpy as np
import pytest

from galaxalign.ood import Familiarity, confidence_floor, knn_distance, proposal_decision


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clusters(rng, n, centre, spread=0.15):
    return _unit(centre + spread * rng.normal(size=(n, len(centre))))


def test_knn_distance_is_zero_on_the_reference_and_grows_away_from_it():
    rng = np.random.default_rng(0)
    ref = _unit(rng.normal(size=(50, 8)))
    assert np.allclose(knn_distance(ref, ref, k=1), 0, atol=1e-6)
    assert (knn_distance(ref, ref, k=1, exclude_self=True) > 1e-3).all()
    assert knn_distance(-ref[:1], ref[:1], k=1)[0] == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        knn_distance(ref[:, :4], ref)


def test_confidence_floor_counts_down_from_the_most_confident():
    conf = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    right = np.array([1, 1, 1, 1, 0, 0, 0])
    assert confidence_floor(conf, right, 0.9, min_count=2) == 0.7  # 4 of 4 right down to 0.7, then 4/5
    assert confidence_floor(conf, right, 0.5, min_count=2) == 0.4  # 4/7 right is still ≥ 0.5
    assert confidence_floor(conf, np.zeros(7), 0.9) == 1.0          # never reliable: nothing is shown
    assert confidence_floor(np.array([]), np.array([])) == 1.0


def test_familiarity_separates_a_shifted_distribution_and_round_trips():
    rng = np.random.default_rng(1)
    centre = np.zeros(16)
    centre[0] = 1
    other = np.zeros(16)
    other[1] = 1
    train, held = _clusters(rng, 800, centre), _clusters(rng, 400, centre)
    probs = np.tile([0.95, 0.05], (400, 1))
    fam = Familiarity.fit(train, held, np.zeros(400, int), probs)
    inside = fam.scores(_clusters(rng, 1000, centre))
    outside = fam.scores(_clusters(rng, 200, other))
    assert 0.90 <= (inside <= 1).mean() <= 0.99  # the limit holds ~95 % of in-distribution galaxies
    assert (outside > 1).all()
    assert fam.floor == pytest.approx(0.95)
    back = Familiarity.from_dict(fam.to_dict())
    assert np.allclose(back.scores(held[:20]), fam.scores(held[:20]))
    assert json.dumps(fam.summary())  # the summary is plain JSON for the store


def test_proposal_decision_reasons():
    gate = {"confidence_floor": 0.6, "target_precision": 0.9}
    assert proposal_decision(0.8, 0.4, gate) == (True, None)
    shown, why = proposal_decision(0.8, 2.5, gate)
    assert not shown and "unfamiliarity 2.5" in why
    shown, why = proposal_decision(0.4, 0.4, gate)
    assert not shown and "unsure (40%" in why and "above 60%" in why
    assert not proposal_decision(0.99, 0.1, {"confidence_floor": 1.0})[0]
    assert proposal_decision(0.3, None, None) == (True, None)  # an uncalibrated model: shown as before
    assert proposal_decision(0.8, 2.5, {"ood_max": 5.0})[0]     # an admin widened the limit


def test_training_calibrates_and_the_embedding_job_scores_every_galaxy(built_workspace):
    from galaxalign.data import load_survey
    from galaxalign.inference import embed_images, familiarity_of, load_embeddings
    from galaxalign.model import load_model
    from galaxalign.workspace import Workspace

    w = Workspace(built_workspace)
    model = load_model(w.models / "starter")
    fam = familiarity_of(model)
    assert fam is not None and fam.limit > 0 and 0 < len(fam.reference) <= 4096
    sidecar = json.loads((w.models / "starter" / "model.json").read_text())
    assert "reference" not in sidecar["familiarity"] and sidecar["metrics"]["proposal"]["k"] == fam.k
    emb, preds = load_embeddings(w.embeddings / "starter" / "demo")
    assert "ood" in preds and np.isfinite(preds.ood).all() and len(preds) == len(emb)
    # pure noise is further from the training galaxies than the survey's own galaxies are
    survey = load_survey(w.demo_survey)
    noise = np.random.default_rng(0).integers(0, 256, (16, *survey.image_shape), dtype=np.uint8)
    with_noise = model.encode_image(model.preprocess(noise), normalize=True).detach().numpy()
    assert np.median(fam.scores(with_noise)) > np.median(preds.ood)
    assert embed_images(model, survey, [0]).shape[1] == emb.shape[1]


def test_the_gate_refuses_out_of_range_values():
    from galaxalign.store import StoreError, set_proposal_gate  # noqa: F401

    with pytest.raises(StoreError, match=r"confidence_floor 1.5: must be a number in \[0, 1\]"):
        set_proposal_gate(None, "x", confidence_floor=1.5)
