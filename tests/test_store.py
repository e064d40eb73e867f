"""The annotation store on SQLite and PostgreSQL: votes, consensus, retirement, queue, models, exports."""
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, inspect, select, text

from conftest import GZ2_CIGAR, GZ2_ROUND, GZ2_STAR, write_galaxy10
from galaxalign.data import load_survey
from galaxalign.store import (AccessDenied, DuplicateVote, InvalidAnswer, NotFound, RetirementRule,
                              StoreError, activate_model, active_model, add_volunteer, authenticate, consensus_labels,
                              enqueue_job_row, export_classifications, export_vote_fractions, finish_job, get_galaxy,
                              get_job, list_model_versions, next_galaxy_for, record_classification, register_model,
                              register_survey, store_predictions, update_job, volunteer_skill, volunteer_stats,
                              vote_fractions, write_table)
from galaxalign.store.models import Classification, Galaxy, utcnow
from galaxalign.taxonomy import GALAXY10


@pytest.fixture
def seeded(store, synth_h5):
    survey = load_survey(synth_h5)
    register_survey(store, survey, "demo", gold_fraction=0.1)
    for i in range(6):
        add_volunteer(store, f"vol{i}", "volunteer", f"password-{i}")
    add_volunteer(store, "boss", "admin", "admin-password")
    return store, survey


def n_rows(store, model):
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_schema_comes_from_alembic(store):
    with store.engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0014"
    # the queue's indexes on large surveys come from migrations 0005 and 0006, Talk's from 0011
    assert "ix_leases_galaxy_id" in {i["name"] for i in inspect(store.engine).get_indexes("leases")}  # 0013
    assert "ix_galaxy_survey_idx" in {i["name"] for i in inspect(store.engine).get_indexes("galaxies")}
    assert {"ix_prediction_entropy", "ix_prediction_disagreement", "ix_prediction_mutual_info"} <= {
        i["name"] for i in inspect(store.engine).get_indexes("predictions")}
    assert {"ix_comments_galaxy", "ix_comments_created"} <= {i["name"] for i in inspect(store.engine).get_indexes("comments")}
    if store.dialect == "sqlite":
        with store.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_passwords_are_hashed_and_checked(store):
    add_volunteer(store, "ada", "researcher", "correct horse battery")
    with store.read() as s:
        stored = s.execute(text("SELECT password_hash FROM volunteers WHERE name='ada'")).scalar()
    assert stored.startswith("$argon2") and "correct horse" not in stored
    assert authenticate(store, "ada", "correct horse battery").role == "researcher"
    assert authenticate(store, "ada", "wrong") is None
    assert authenticate(store, "nobody", "correct horse battery") is None
    with pytest.raises(StoreError, match="already exists"):
        add_volunteer(store, "ada", "volunteer", "another password")
    with pytest.raises(StoreError, match="role 'king'"):
        add_volunteer(store, "bob", "king", "password123")
    with pytest.raises(StoreError, match="at least 8"):
        add_volunteer(store, "bob", "volunteer", "short")
    with pytest.raises(StoreError, match="must be 2–40"):
        add_volunteer(store, "'; DROP TABLE volunteers;--", "volunteer", "password123")


def test_a_vote_is_stored_with_its_path_class_and_proposal(seeded):
    store, survey = seeded
    gid = survey.id_str[0]
    r = record_classification(store, "vol0", gid, GZ2_ROUND, seconds=4.2, proposal=(2, 0.83), survey="demo")
    assert r.resolved_class == 2 and r.n_votes == 1 and not r.retired
    with store.read() as s:
        c = s.scalar(select(Classification))
        assert c.answers == GZ2_ROUND and c.accepted is True and c.proposal_confidence == pytest.approx(0.83)
        assert c.workflow == "gz2" and c.seconds == pytest.approx(4.2)
    r2 = record_classification(store, "vol1", gid, GZ2_CIGAR, proposal=(2, 0.83))
    assert r2.resolved_class == 4
    with store.read() as s:
        assert s.scalar(select(Classification).where(Classification.id == r2.classification_id)).accepted is False


def test_bad_votes_are_refused_and_write_nothing(seeded):
    store, survey = seeded
    g0, g1 = survey.id_str[0], survey.id_str[1]
    record_classification(store, "vol0", g0, GZ2_ROUND)
    cases = [
        (dict(volunteer="ghost", galaxy=g1, answers=GZ2_ROUND), NotFound, "volunteer 'ghost' does not exist"),
        (dict(volunteer="vol0", galaxy="no-such-galaxy", answers=GZ2_ROUND), NotFound, "galaxy 'no-such-galaxy'"),
        (dict(volunteer="vol0", galaxy=g0, answers=GZ2_CIGAR), DuplicateVote, "already classified"),
        (dict(volunteer="vol1", galaxy=g1, answers=[["T01", "t01_smooth"]]), InvalidAnswer, "stops before the end"),
        (dict(volunteer="vol1", galaxy=g1, answers=[["T02", "t02_yes"]]), InvalidAnswer, "tree asks T01"),
        (dict(volunteer="vol1", galaxy=g1, answers=[["FLAT", 3]]), InvalidAnswer, "tree asks T01"),
    ]
    for kw, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            record_classification(store, **kw)
    with pytest.raises(StoreError, match="seconds -1: time taken must be a finite number"):
        record_classification(store, "vol1", g1, GZ2_ROUND, seconds=-1)
    assert n_rows(store, Classification) == 1
    assert get_galaxy(store, g0).n_votes == 1 and get_galaxy(store, g1).n_votes == 0


def test_retirement_after_n_votes_or_early_consensus(seeded):
    store, survey = seeded
    rule = RetirementRule(n_votes=5, early_votes=3, early_agreement=0.8)
    agree, split = survey.id_str[2], survey.id_str[3]
    for v in ("vol0", "vol1"):
        assert not record_classification(store, v, agree, GZ2_ROUND, rule=rule).retired
    r = record_classification(store, "vol2", agree, GZ2_ROUND, rule=rule)
    assert r.retired and r.consensus_label == 2 and r.agreement == 1.0
    assert get_galaxy(store, agree).retired_reason == "consensus"
    late = record_classification(store, "vol3", agree, GZ2_CIGAR, rule=rule)  # on screen as it retired: kept
    assert late.late and late.n_votes == 3 and late.consensus_label == 2 and late.agreement == 1.0
    paths = [GZ2_ROUND, GZ2_CIGAR, GZ2_ROUND, GZ2_CIGAR, GZ2_STAR]
    for i, p in enumerate(paths):
        r = record_classification(store, f"vol{i}", split, p, rule=rule)
        assert r.retired == (i == 4)
    g = get_galaxy(store, split)
    assert g.retired_reason == "vote_limit" and g.consensus_label == 2 and g.consensus_agreement == pytest.approx(0.4)


def test_vote_fractions_per_task_and_per_class(seeded):
    store, survey = seeded
    gid = survey.id_str[4]
    for v, p in zip(("vol0", "vol1", "vol2", "vol3"), (GZ2_ROUND, GZ2_ROUND, GZ2_CIGAR, GZ2_STAR)):
        record_classification(store, v, gid, p, rule=RetirementRule(10, 10, 1.0))
    fr = vote_fractions(store, gid)
    assert fr["n_votes"] == 4
    assert fr["answers"]["T01"] == {"t01_smooth": 0.75, "t01_star": 0.25}
    assert fr["answers"]["T07"] == pytest.approx({"t07_round": 2 / 3, "t07_cigar": 1 / 3})
    assert fr["classes"] == {2: 0.5, 4: 0.25, None: 0.25}
    df = consensus_labels(store, "demo")
    row = df.set_index("id_str").loc[gid]
    assert row.consensus_label == 2 and row.agreement == 0.5 and row.frac_2 == 0.5 and row.frac_4 == 0.25


def test_skill_from_gold_standard_and_weighted_fractions(seeded):
    store, survey = seeded
    with store.read() as s:
        gold = s.execute(select(Galaxy.id_str, Galaxy.known_label).where(Galaxy.gold.is_(True))).all()
    assert len(gold) == 6  # 10 % of 60 labelled galaxies
    paths = {c.index: [list(step) for step in c.path] for c in GALAXY10}
    rule = RetirementRule(10, 10, 1.0)
    for id_str, known in gold:  # vol0 gets every gold galaxy right; vol1 calls them all stars
        record_classification(store, "vol0", id_str, paths[known], rule=rule)
        record_classification(store, "vol1", id_str, GZ2_STAR, rule=rule)
    sk0, sk1 = volunteer_skill(store, "vol0", 10), volunteer_skill(store, "vol1", 10)
    assert sk1["answered"] == 6 and sk1["correct"] == 0 and np.array(sk1["confusion"])[:, 10].sum() == 6
    assert sk0["accuracy"] == 1.0
    # a disputed galaxy: the skilled volunteer's class wins when weighted, the tie breaks low otherwise
    target = next(i for i in survey.id_str if i not in {g for g, _ in gold})
    record_classification(store, "vol0", target, GZ2_CIGAR, rule=rule)
    record_classification(store, "vol1", target, GZ2_STAR, rule=rule)
    w = vote_fractions(store, target, weighted=True)["classes"]
    assert w[4] == pytest.approx(7 / 8 / (7 / 8 + 1 / 8))  # weights (6+1)/(6+2) and (0+1)/(6+2)
    assert vote_fractions(store, target)["classes"] == {4: 0.5, None: 0.5}
    assert consensus_labels(store, "demo", weighted=True).set_index("id_str").loc[target, "consensus_label"] == 4


def _model_unsure_of_one(store, survey, tmp_path, row: int) -> None:
    """An active model sure of every galaxy of "demo" but the one at ``row``."""
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    mid = register_model(store, "m1", str(ckpt), {}, {"accuracy": 0.5}, survey="demo")
    activate_model(store, mid)
    probs = np.full((len(survey), 10), 0.001)
    probs[:, 0] = 0.991
    probs[row] = 0.1
    store_predictions(store, mid, "demo", probs)


def test_queue_never_repeats_and_prefers_uncertain_galaxies(seeded, tmp_path):
    store, survey = seeded
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(len(survey)):
        g = next_galaxy_for(store, "vol0", "demo", rng=rng, gold_rate=0.2)
        assert g is not None and g.id_str not in seen and not g.retired
        seen.add(g.id_str)
        record_classification(store, "vol0", g.id, GZ2_ROUND, rule=RetirementRule(50, 50, 1.0))
    assert next_galaxy_for(store, "vol0", "demo", rng=rng) is None
    # an active model that is sure about everything but one galaxy: that one comes first
    _model_unsure_of_one(store, survey, tmp_path, 7)
    firsts = [next_galaxy_for(store, "vol1", "demo", rng=np.random.default_rng(k), gold_rate=0, randomness=0.3).idx
              for k in range(5)]
    assert firsts == [7] * 5


def test_model_versions_activate_one_at_a_time(seeded, tmp_path):
    store, _ = seeded
    for name in ("v1", "v2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.pt").write_bytes(name.encode())
    a = register_model(store, "v1", str(tmp_path / "v1"), {"arch": "galaxalign-tiny"}, {"map": float("nan")})
    b = register_model(store, "v2", str(tmp_path / "v2"), {}, {"accuracy": 0.9}, parent_id=a)
    assert active_model(store) is None
    activate_model(store, a)
    activate_model(store, b)
    versions = {m.name: m for m in list_model_versions(store)}
    assert versions["v1"].status == "retired" and versions["v2"].status == "active"
    assert versions["v2"].parent_id == a and len(versions["v2"].sha256) == 64
    assert versions["v1"].metrics == {"map": None}  # NaN stored as null
    activate_model(store, "v1")  # roll back
    assert active_model(store).name == "v1"
    with pytest.raises(NotFound):
        activate_model(store, "v9")
    with pytest.raises(NotFound, match="does not exist"):
        register_model(store, "v3", str(tmp_path / "missing"), {}, {})


def test_jobs_record_progress_and_a_log_tail(store):
    add_volunteer(store, "boss", "admin", "admin-password")
    jid = enqueue_job_row(store, "retrain", {"epochs": 2}, requested_by="boss")
    for i in range(300):
        update_job(store, jid, progress=i / 300, message=f"step {i}", log=f"line {i} " + "x" * 20)
    j = get_job(store, jid)
    assert j.state == "queued" and j.progress == pytest.approx(299 / 300) and j.message == "step 299"
    assert j.log_tail.endswith("line 299 " + "x" * 20 + "\n") and len(j.log_tail) <= 4000
    finish_job(store, jid, "failed", error="Traceback...\nRuntimeError: out of memory")
    j = get_job(store, jid)
    assert j.state == "failed" and "out of memory" in j.log_tail and j.finished_at is not None
    with pytest.raises(StoreError):
        finish_job(store, jid, "running")


def test_exports_read_back_with_pandas(seeded, tmp_path):
    store, survey = seeded
    rule = RetirementRule(10, 10, 1.0)
    for v, p in (("vol0", GZ2_ROUND), ("vol1", GZ2_CIGAR), ("vol2", GZ2_ROUND)):
        record_classification(store, v, survey.id_str[5], p, seconds=3.0, proposal=(2, 0.7), rule=rule)
    record_classification(store, "vol0", survey.id_str[6], GZ2_STAR, rule=rule)
    df = export_classifications(store, "demo")
    write_table(df, tmp_path / "cls.csv")
    back = pd.read_csv(tmp_path / "cls.csv")
    assert list(back.columns) == ["classification_id", "user_name", "user_id", "workflow_id", "workflow_name",
                                  "workflow_version", "created_at", "gold_standard", "expert", "metadata",
                                  "annotations", "subject_data", "subject_ids"]
    assert len(back) == 4
    ann = json.loads(back.annotations[0])
    assert [a["task"] for a in ann] == ["T01", "T07", "T06"] and ann[1]["value"] == "Completely round"
    meta = json.loads(back.metadata[0])
    assert meta["resolved_class_name"] == "Round Smooth" and meta["accepted_proposal"] is True
    assert json.loads(back.subject_data[0])[str(back.subject_ids[0])]["id_str"] == survey.id_str[5]
    vf = export_vote_fractions(store, "demo")
    write_table(vf, tmp_path / "vf.parquet")
    vf_back = pd.read_parquet(tmp_path / "vf.parquet").set_index("id_str")
    ref = vote_fractions(store, survey.id_str[5])["classes"]
    assert vf_back.loc[survey.id_str[5], "frac_Round Smooth"] == pytest.approx(ref[2])
    assert vf_back.loc[survey.id_str[5], "frac_Cigar Shaped Smooth"] == pytest.approx(ref[4])
    assert vf_back.loc[survey.id_str[5], "consensus_name"] == "Round Smooth"
    with pytest.raises(StoreError, match="csv or .parquet"):
        write_table(vf, tmp_path / "vf.xlsx")


def test_export_neutralises_spreadsheet_formulas(store, tmp_path):
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.png")
    pd.DataFrame({"id_str": ["=HYPERLINK(\"http://x\")", "@SUM(A1)"], "file_loc": ["0.png", "1.png"],
                  "label": ["ring", "lens"]}).to_csv(tmp_path / "catalog.csv", index=False)
    survey = load_survey(tmp_path)
    register_survey(store, survey, "odd", workflow="flat")
    add_volunteer(store, "ann", "volunteer", "password123")
    record_classification(store, "ann", "=HYPERLINK(\"http://x\")", [["FLAT", 1]])
    with pytest.raises(InvalidAnswer, match="out of range"):
        record_classification(store, "ann", "@SUM(A1)", [["FLAT", 7]])
    df = export_classifications(store, "odd")
    assert df.annotations[0].startswith("[")  # JSON stays JSON
    sd = json.loads(df.subject_data[0])
    assert list(sd.values())[0]["id_str"] == "=HYPERLINK(\"http://x\")"  # inside JSON it is data, not a cell
    vf = export_vote_fractions(store, "odd")
    assert vf.id_str.tolist() == ["'=HYPERLINK(\"http://x\")"]
    assert vf.consensus_name.tolist() == ["ring"]


def test_volunteer_stats_count_crowd_agreement(seeded):
    store, survey = seeded
    rule = RetirementRule(10, 10, 1.0)
    g = survey.id_str[8]
    record_classification(store, "vol0", g, GZ2_ROUND, proposal=(2, 0.9), rule=rule)
    record_classification(store, "vol1", g, GZ2_ROUND, proposal=(2, 0.9), rule=rule)
    record_classification(store, "vol2", g, GZ2_CIGAR, proposal=(2, 0.9), rule=rule)
    st = volunteer_stats(store).set_index("volunteer")
    assert st.loc["vol0", "votes"] == 1 and st.loc["vol0", "crowd_agreement"] == 1.0
    assert st.loc["vol2", "crowd_agreement"] == 0.0 and st.loc["vol2", "accept_rate"] == 0.0
    assert st.loc["boss", "votes"] == 0
    only = volunteer_stats(store, "vol2")
    assert only.volunteer.tolist() == ["vol2"] and only.crowd_agreement.tolist() == [0.0]


def test_deactivated_volunteers_cannot_vote(seeded):
    store, survey = seeded
    with store.sessions() as s, s.begin():
        s.execute(text("UPDATE volunteers SET active = :f WHERE name = 'vol5'"), {"f": False})
    with pytest.raises(AccessDenied):
        record_classification(store, "vol5", survey.id_str[0], GZ2_ROUND)


def test_survey_import_validates_and_leaves_nothing_behind(store, tmp_path, galaxy10_file):
    import io
    import zipfile

    from galaxalign.data import SurveyError
    from galaxalign.importer import SurveyImportError, import_survey
    from galaxalign.store import list_surveys
    from galaxalign.workspace import Workspace

    ws = Workspace(tmp_path / "ws").create()
    res = import_survey(store, ws, "Galaxy10_DECals.h5", galaxy10_file.read_bytes(), "g10")
    assert res["galaxies"] == 12 and [s.name for s in list_surveys(store)] == ["g10"]
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../escape.txt", "x")
    bad = [
        ("notes.h5", b"not hdf5", "notes.h5: not an HDF5 file"),
        ("evil.zip", evil.getvalue(), "points outside the survey folder"),
        ("broken.zip", b"PK\x03\x04garbage", "not a valid zip file"),
        ("x.exe", b"MZ", "upload an .h5/.hdf5 survey"),
    ]
    for k, (fname, data, msg) in enumerate(bad):
        with pytest.raises((SurveyImportError, SurveyError), match=msg):
            import_survey(store, ws, fname, data, f"bad{k}")
        assert not (ws.surveys / "imported" / f"bad{k}.h5").exists()
        assert not list((ws.surveys / "uploads").iterdir())  # the staged upload is gone too
    with pytest.raises(SurveyImportError, match="must be 2–40"):
        import_survey(store, ws, "a.h5", galaxy10_file.read_bytes(), "../etc")
    with pytest.raises(SurveyImportError, match="already imported"):
        import_survey(store, ws, "a.h5", galaxy10_file.read_bytes(), "g10")
    assert [s.name for s in list_surveys(store)] == ["g10"]
    assert not (tmp_path / "escape.txt").exists()


def test_relocating_a_workspace_rewrites_only_its_paths(seeded, tmp_path):
    from galaxalign.store import get_survey, relocate_paths

    store, survey = seeded
    old = str(survey.path.parent)
    (tmp_path / "m.pt").write_bytes(b"x")
    register_model(store, "m1", str(tmp_path / "m.pt"), {}, {})
    n = relocate_paths(store, old, "/new/home")
    assert n == 1 + (str(tmp_path).startswith(old + "/") or str(tmp_path) == old)
    assert get_survey(store, "demo").path == "/new/home/" + survey.path.name
    assert relocate_paths(store, old, "/elsewhere") == 0


def test_names_are_whole_and_unique_whatever_the_case(seeded, synth_h5):
    store, survey = seeded
    for bad in ("bob\n", "base2\n", "a"):
        with pytest.raises(StoreError, match="must be 2–40 letters|must not contain control"):
            add_volunteer(store, bad, "admin", "password-x")
        with pytest.raises(StoreError, match="must be 2–40 letters"):
            register_survey(store, survey, bad)
    with pytest.raises(StoreError, match="volunteer 'VOL1' already exists \\(as 'vol1'\\)"):
        add_volunteer(store, "VOL1", "volunteer", "password-x")
    with pytest.raises(StoreError, match="survey 'DEMO' is already registered \\(as 'demo'\\)"):
        register_survey(store, survey, "DEMO")


def test_a_galaxy_of_another_survey_is_refused_by_integer_id(seeded, synth_h5):
    store, survey = seeded
    register_survey(store, survey, "other", known_fraction=0.0, gold_fraction=0.0)
    g = get_galaxy(store, survey.id_str[0], "other")
    before = n_rows(store, Classification)
    with pytest.raises(StoreError, match="belongs to another survey"):
        record_classification(store, "vol1", g.id, GZ2_ROUND, survey="demo")
    with pytest.raises(StoreError, match="belongs to another survey"):
        vote_fractions(store, g.id, survey="demo")
    assert n_rows(store, Classification) == before


def test_a_survey_registers_in_chunks_with_every_galaxy_once(store, synth_h5, monkeypatch):
    """Bounded memory for a survey of millions: galaxies go in INSERT_CHUNK at a time, in one
    transaction; every row arrives once, in order, with its known and gold flags."""
    import galaxalign.store.surveys as surveys_module

    survey = load_survey(synth_h5)
    monkeypatch.setattr(surveys_module, "INSERT_CHUNK", 7)
    sid = register_survey(store, survey, "chunked", gold_fraction=0.1)
    with store.read() as s:
        rows = s.execute(select(Galaxy.idx, Galaxy.id_str, Galaxy.known_label, Galaxy.gold)
                         .where(Galaxy.survey_id == sid).order_by(Galaxy.idx)).all()
    assert [r.idx for r in rows] == list(range(len(survey)))
    assert [r.id_str for r in rows] == [str(x) for x in survey.id_str]
    assert sum(r.gold for r in rows) == round(0.1 * (survey.labels >= 0).sum())
    assert all(r.known_label == survey.labels[r.idx] for r in rows if r.known_label is not None)


def test_on_a_large_survey_the_queue_scores_a_bounded_pool(seeded, tmp_path, monkeypatch):
    """With more eligible galaxies than POOL, a request reads the model's most uncertain galaxies and a
    slice from a random row — POOL at most — and still never repeats, never serves a retired galaxy,
    and still puts the one uncertain galaxy first."""
    import galaxalign.store.queue as queue_module

    store, survey = seeded
    monkeypatch.setattr(queue_module, "POOL", 6)
    _model_unsure_of_one(store, survey, tmp_path, len(survey) - 3)  # near the end: only the entropy order finds it
    scored = []
    real = queue_module._candidates
    monkeypatch.setattr(queue_module, "_candidates", lambda *a: scored.append(real(*a)) or scored[-1])
    firsts = [next_galaxy_for(store, "vol1", "demo", rng=np.random.default_rng(k), gold_rate=0, randomness=0.3).idx
              for k in range(5)]
    assert firsts == [len(survey) - 3] * 5 and all(len(c) <= 6 for c in scored)
    seen = set()
    rng = np.random.default_rng(1)
    for _ in range(len(survey)):
        g = next_galaxy_for(store, "vol2", "demo", rng=rng, gold_rate=0.2, strategy="random")
        assert g is not None and g.id_str not in seen and not g.retired
        seen.add(g.id_str)
        record_classification(store, "vol2", g.id, GZ2_ROUND, rule=RetirementRule(50, 50, 1.0))
    assert next_galaxy_for(store, "vol2", "demo", rng=rng) is None


def test_upgrading_a_store_that_holds_data_keeps_every_row(db_url):
    """Migrations that rebuild ``surveys`` and ``volunteers`` (SQLite cannot alter a column in place) once
    cascaded the DROP of the old table to every galaxy, vote and prediction of an upgraded workspace."""
    from galaxalign.store import migrate, open_store

    store = open_store(db_url, upgrade=False)
    migrate(store.engine, "0001")
    rows = {"surveys": "INSERT INTO surveys (id, name, path, kind, class_names, workflow, n_galaxies, created_at) "
                       "VALUES (1, 'old', '/x.h5', 'galaxy10', '[\"a\", \"b\"]', 'gz2', 3, '2026-01-01')",
            "volunteers": "INSERT INTO volunteers (id, name, role, active, created_at) "
                          "VALUES (1, 'ada', 'volunteer', true, '2026-01-01')",
            "galaxies": "INSERT INTO galaxies (id, survey_id, id_str, idx, gold, n_votes, retired) VALUES "
                        "(1, 1, 'g0', 0, false, 1, false), (2, 1, 'g1', 1, false, 0, false), "
                        "(3, 1, 'g2', 2, true, 0, false)",
            "model_versions": "INSERT INTO model_versions (id, name, config, checkpoint_path, sha256, metrics, "
                              "status, created_at) VALUES (1, 'v1', '{}', '/m.pt', 'ab', '{}', 'active', '2026-01-01')",
            "classifications": "INSERT INTO classifications (id, galaxy_id, volunteer_id, workflow, workflow_version, "
                               "answers, created_at) VALUES (1, 1, 1, 'gz2', '1', '[]', '2026-01-01')",
            "predictions": "INSERT INTO predictions (id, model_version_id, galaxy_id, probs, top_class, confidence, "
                           "entropy) VALUES (1, 1, 1, '[0.5, 0.5]', 0, 0.5, 0.69), (2, 1, 2, '[0.5, 0.5]', 1, 0.5, 0.69)"}
    with store.engine.begin() as c:
        for sql in rows.values():
            c.exec_driver_sql(sql)
    before = {t: n_rows_sql(store, t) for t in rows}
    store.dispose()
    store = open_store(db_url)  # every later migration, 0002 … head
    with store.engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() != "0001"
    assert {t: n_rows_sql(store, t) for t in rows} == before == {t: v for t, v in zip(rows, (1, 1, 3, 1, 1, 2))}
    if store.dialect == "sqlite":  # the old file is kept beside the new one, and the references are enforced again
        path = store.engine.url.database
        backups = list(Path(path).parent.glob(Path(path).name + ".before-*"))
        assert len(backups) == 1
        with store.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


def n_rows_sql(store, table):
    with store.engine.connect() as c:
        return c.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()


def test_a_late_vote_is_stored_flagged_and_exported_and_changes_no_retirement(seeded):
    """Issue 24 §5: a vote that arrives after its galaxy retired (others finished it while it was on
    screen) is kept — in the store, flagged late, in the Zooniverse export — and counts for nothing."""
    from galaxalign.store import consensus_labels, export_classifications, vote_fractions

    store, survey = seeded
    rule = RetirementRule(n_votes=5, early_votes=3, early_agreement=0.8)
    g = survey.id_str[4]
    for v in ("vol0", "vol1", "vol2"):
        record_classification(store, v, g, GZ2_ROUND, rule=rule)
    before = get_galaxy(store, g)
    assert before.retired and before.retired_reason == "consensus"
    r = record_classification(store, "vol3", g, GZ2_STAR, rule=rule)
    after = get_galaxy(store, g)
    assert r.late and r.classification_id
    assert (after.n_votes, after.consensus_label, after.consensus_agreement, after.retired_at) == \
        (3, before.consensus_label, before.consensus_agreement, before.retired_at)
    assert vote_fractions(store, g)["n_votes"] == 3
    row = consensus_labels(store, "demo").set_index("id_str").loc[g]
    assert row["n_votes"] == 3 and row["agreement"] == 1.0
    ex = export_classifications(store, "demo")
    meta = [json.loads(m) for m in ex["metadata"]]
    late = [m for m in meta if m["late"]]
    assert len(ex) == 4 and len(late) == 1 and late[0]["subject_selection_state"]["retired"] is True
    with pytest.raises(DuplicateVote):  # still one vote per volunteer and galaxy
        record_classification(store, "vol3", g, GZ2_ROUND, rule=rule)


def test_a_galaxy_on_screen_is_held_and_served_again_when_the_lease_expires(tmp_path):
    """Two volunteers are not both sent the galaxy that needs one more vote; a lease that lapses (the
    volunteer walked away) lets it be served again, and a vote releases it."""
    from galaxalign.store import open_store, set_retirement
    from galaxalign.store.models import Lease

    survey = load_survey(write_galaxy10(tmp_path / "two.h5", n=2))
    store = open_store(f"sqlite:///{tmp_path / 'lease.db'}")
    register_survey(store, survey, "pair", workflow="flat")
    set_retirement(store, "pair", n_votes=1, early_votes=1, skill_min_votes=1)
    for v in ("ana", "ben", "cy"):
        add_volunteer(store, v, "volunteer", "password-" + v)
    rng = np.random.default_rng(0)
    a = next_galaxy_for(store, "ana", "pair", rng, gold_rate=0.0)
    b = next_galaxy_for(store, "ben", "pair", rng, gold_rate=0.0)
    assert a is not None and b is not None and a.id != b.id  # one vote each is all either needs
    assert next_galaxy_for(store, "cy", "pair", rng, gold_rate=0.0) is None  # both are held
    store.write(lambda s: s.query(Lease).filter(Lease.galaxy_id == b.id).update(  # ben walked away: it lapses
        {"expires_at": utcnow() - timedelta(seconds=1)}))
    c = next_galaxy_for(store, "cy", "pair", rng, gold_rate=0.0)
    assert c is not None and c.id == b.id
    record_classification(store, "ana", a.id, [["FLAT", 0]])  # ana's vote retires a and releases her lease
    assert n_rows(store, Lease) == 2  # cy's, and ben's lapsed one (one row per volunteer at most)
    late = record_classification(store, "ben", b.id, [["FLAT", 1]])  # ben came back: counted, b had room
    assert not late.late and late.retired and n_rows(store, Lease) == 1  # his vote released his row
    assert record_classification(store, "cy", b.id, [["FLAT", 1]]).late  # cy's is late, and kept
    store.dispose()
