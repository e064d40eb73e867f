"""The Streamlit app under streamlit.testing.v1.AppTest: every page, as a volunteer, a researcher and
an admin, against a small workspace with a tiny trained model."""
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")
VIEWS = Path(APP).parent / "views"


def signed_in(name, password):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    at.switch_page(str(VIEWS / "signin.py")).run()
    assert not at.exception
    at.text_input(key="signin_name").set_value(name)
    at.text_input(key="signin_password").set_value(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    if at.session_state["user"] if "user" in at.session_state else None:
        # AppTest keeps asking for the page last switched to (sign-in, gone from this navigation): land as
        # the app lands a signed-in person, on Classify
        at.switch_page(str(VIEWS / "classify.py")).run()
        assert not at.exception, at.exception
        at._page_hash = ""  # from here on, follow the pages the app itself switches to
    return at


def votes(root):
    from galaxalign.store import open_store
    from galaxalign.store.models import Classification
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(root).database_url)
    with store.read() as s:
        n = s.scalar(select(func.count()).select_from(Classification))
        rows = s.execute(select(Classification.answers, Classification.accepted, Classification.seconds)).all()
    store.dispose()
    return n, rows


def test_wrong_password_is_refused(workspace):
    at = signed_in("vera", "nope")
    assert "wrong password" in at.error[0].value
    assert at.text_input(key="signin_name")  # still on the sign-in page


def test_volunteer_sees_classify_and_gallery_only(workspace):
    at = signed_in("vera", "volunteer-pw")
    assert at.title[0].value == "Classify"
    assert "Admin" not in str(at.sidebar) and "Explore" not in str(at.sidebar)
    with pytest.raises(Exception):  # not in this user's navigation: the page cannot be reached
        at.switch_page(str(VIEWS / "admin.py")).run()
        assert not at.exception and at.title[0].value == "Admin"


def test_volunteer_classifies_through_the_tree(workspace):
    at = signed_in("vera", "volunteer-pw")
    assert any("Model proposal" in m.value for m in at.markdown)
    first = at.caption[1].value if len(at.caption) > 1 else None
    # answer the tree by hand: smooth → completely round → nothing odd
    for key in ("ans_t01_smooth", "ans_t07_round"):
        at.button(key=key).click().run()
        assert not at.exception
    assert votes(workspace)[0] == 0  # nothing is written until the path is complete
    at.button(key="cls_back").click().run()  # back within the galaxy
    at.button(key="ans_t07_round").click().run()
    at.button(key="ans_t06_no").click().run()
    n, rows = votes(workspace)
    assert n == 1 and rows[0][0] == [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]
    assert rows[0][2] is not None and rows[0][1] is not None  # time taken, and proposal accepted or not
    # the one-click confirmation of the model's proposal is a second vote, on the next galaxy
    at.button(key="cls_confirm").click().run()
    n, rows = votes(workspace)
    assert n == 2 and rows[1][1] is True
    assert any("You have classified **2** galaxies" in c.value for c in at.caption)
    at.button(key="cls_skip").click().run()
    assert votes(workspace)[0] == 2 and not at.exception
    assert first is not None


def test_researcher_explores_map_grid_and_search(workspace):
    at = signed_in("rosa", "researcher-pw")
    at.switch_page(str(VIEWS / "explore.py")).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explore the embedding space"
    assert len(at.get("plotly_chart")) == 1
    for m in ("tsne", "umap"):
        at.radio(key="exp_method").set_value(m).run()
        assert not at.exception
    at.selectbox(key="exp_colour").set_value("volunteer–model disagreement").run()
    assert not at.exception
    # only the open tab runs: the search is not computed until its tab is opened
    assert not any("score" in c.value for c in at.caption) and "exp_mode" not in at.session_state
    at.session_state["exp_tab"] = "Similarity search"
    at.run()
    assert not at.get("plotly_chart")  # the map is not drawn behind the search
    at.radio(key="exp_mode").set_value("text").run()
    at.text_input(key="exp_text").set_value("A picture of an edge-on with bulge galaxy").run()
    assert not at.exception
    assert sum("score" in c.value for c in at.caption) == 12
    at.radio(key="exp_mode").set_value("symbol").run()
    at.selectbox(key="exp_symbol").set_value("t08_merger").run()
    assert sum("score" in c.value for c in at.caption) == 12
    at.radio(key="exp_mode").set_value("galaxy").run()
    at.text_input(key="exp_gid").set_value("no-such-galaxy").run()
    assert "'no-such-galaxy' is not in the index" in at.error[0].value
    at.session_state["exp_tab"] = "Thumbnail grid (PCA)"
    at.run()
    assert not at.exception and len(at.get("image")) == 1  # the grid, and no search results behind it
    at.session_state["exp_tab"] = "Embedding map"  # back to the map: its settings were kept
    at.run()
    assert at.selectbox(key="exp_colour").value == "volunteer–model disagreement"
    assert at.radio(key="exp_method").value == "umap"
    # projections are cached on disk per model version
    assert list((workspace / "embeddings" / "starter" / "demo").glob("proj_*.npy"))
    assert "Admin" not in str(at.sidebar)


def plotly_values(v):
    """A trace's values as a list: plotly sends numpy arrays as ``{"dtype", "bdata"}`` (base64)."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def test_a_survey_larger_than_the_map_limit_draws_a_sample(workspace, monkeypatch):
    import galaxalign.viewing

    monkeypatch.setattr(galaxalign.viewing, "MAP_POINTS", 50)
    at = signed_in("rosa", "researcher-pw")
    at.switch_page(str(VIEWS / "explore.py")).run()
    assert not at.exception, at.exception
    assert any("random sample of 50 of the 60 galaxies in the survey over the density" in c.value for c in at.caption)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert sum(len(trace["hovertext"]) for trace in fig["data"]) == 50  # one hover name per galaxy drawn
    assert [im["layer"] for im in fig["layout"]["images"]] == ["below"]  # every galaxy, as a density image
    assert fig["layout"]["images"][0]["source"].startswith("data:image/png;base64,")
    # zoomed into the region left of the 21st drawn point (as *Zoom to the selection* does): 21 of the drawn
    # galaxies and at most the 10 undrawn ones lie there, so every galaxy there is drawn, without density
    (x0, _), (y0, y1) = fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"]
    cut = sorted(x for trace in fig["data"] for x in plotly_values(trace["x"]))[20]
    at.session_state["exp_bounds"] = {"pca": ((x0, cut), (y0, y1))}
    at.run()
    assert not at.exception, at.exception
    zoomed = json.loads(at.get("plotly_chart")[0].proto.spec)
    xs = [x for trace in zoomed["data"] for x in plotly_values(trace["x"])]
    assert 21 <= len(xs) <= 31 and max(xs) <= cut and "images" not in zoomed["layout"]
    assert not at.button(key="exp_unzoom").disabled
    at.button(key="exp_unzoom").click().run()
    assert sum(len(t["hovertext"]) for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]) == 50


def test_a_large_survey_gets_its_umap_from_the_worker_not_the_page(workspace, monkeypatch):
    import galaxalign.projection

    monkeypatch.setattr(galaxalign.projection, "IN_PAGE_LIMIT", 40)  # the 60-galaxy survey counts as large
    at = signed_in("rosa", "researcher-pw")
    at.switch_page(str(VIEWS / "explore.py")).run()
    at.radio(key="exp_method").set_value("umap").run()
    assert not at.exception, at.exception
    assert any("computed by the worker, not in this page" in i.value for i in at.info)
    at.button(key="exp_project").click().run()
    assert any("Queued projection job" in m.value for m in at.success)  # a researcher may ask for a map

    from galaxalign.jobs import project_map
    from galaxalign.store import active_model, list_jobs, open_store
    from galaxalign.workspace import Workspace

    w = Workspace(workspace)
    store = open_store(w.database_url)
    job = list_jobs(store)[0]
    assert job.kind == "project" and job.params["method"] == "umap"
    res = project_map(store, w, None, job.params)  # what the worker runs
    assert res["galaxies"] == 60 and (Path(active_model(store).embeddings_path) / "demo" / "proj_umap_0.npy").exists()
    store.dispose()
    at.run()
    assert not any("computed by the worker" in i.value for i in at.info)  # now read from disk


def test_admin_retrains_and_manages_versions(workspace):
    at = signed_in("adam", "admin-password")
    at.switch_page(str(VIEWS / "admin.py")).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Admin"
    at.sidebar.number_input(key="adm_s1").set_value(1).run()
    at.sidebar.number_input(key="adm_s2").set_value(1).run()
    at.sidebar.button(key="adm_retrain").click().run()
    assert not at.exception
    assert "Queued re-training job" in at.success[0].value
    from galaxalign.store import list_jobs, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    jobs = list_jobs(store)
    assert len(jobs) == 1 and jobs[0].state == "queued" and jobs[0].params["stage1_epochs"] == 1
    from galaxalign.store import active_model, register_model

    starter = active_model(store)
    register_model(store, "v2", starter.checkpoint_path, {}, {"accuracy": 0.5}, survey="demo", parent_id=starter.id)
    at.run()
    assert any("starter" in str(df.value) and "v2" in str(df.value) for df in at.dataframe)
    at.selectbox(key="adm_version").set_value("v2").run()
    at.button(key="adm_activate").click().run()
    assert "v2 is now the active model" in at.success[0].value and active_model(store).name == "v2"
    at.selectbox(key="adm_version").set_value("starter").run()
    at.button(key="adm_activate").click().run()  # roll back
    assert active_model(store).name == "starter"
    store.dispose()


def test_a_volunteer_cannot_start_a_job_even_by_calling_the_server(workspace):
    from galaxalign.jobs import enqueue
    from galaxalign.store import AccessDenied, list_jobs, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    with pytest.raises(AccessDenied, match="'vera' is a volunteer; this needs a admin"):
        enqueue(store, "retrain", {}, requested_by="vera", workspace=Workspace(workspace))
    assert list_jobs(store) == []
    store.dispose()


def test_gallery_shows_galaxies_with_class_and_symbol(workspace):
    at = signed_in("vera", "volunteer-pw")
    at.switch_page(str(VIEWS / "gallery.py")).run()
    assert not at.exception
    assert at.title[0].value == "Survey gallery"
    assert "60 galaxies" in at.caption[0].value
    at.selectbox(key="gallery_class").set_value("Barred Spiral").run()
    assert any("A picture of a barred spiral galaxy" in m.value for m in at.markdown)


def test_the_server_path_of_a_survey_is_shown_to_admins_only(workspace):
    at = signed_in("vera", "volunteer-pw")
    at.switch_page(str(VIEWS / "gallery.py")).run()
    assert not at.exception
    assert "60 galaxies" in at.caption[0].value and "/" not in at.caption[0].value
    assert str(workspace) not in str(at.main)
    at = signed_in("adam", "admin-password")
    at.switch_page(str(VIEWS / "gallery.py")).run()
    assert not at.exception and str(workspace) in at.caption[0].value


def _gate(root, ood=None, **gate):
    """Set the starter model's proposal gate, and optionally every prediction's unfamiliarity."""
    from sqlalchemy import update

    from galaxalign.store import open_store, set_proposal_gate
    from galaxalign.store.models import Prediction
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(root).database_url)
    set_proposal_gate(store, "starter", **gate)
    if ood is not None:
        store.write(lambda s: s.execute(update(Prediction).values(ood=ood)))
    store.dispose()


@pytest.mark.parametrize("ood, gate, reason", [
    (3.0, {"ood_max": 1.0}, "looks unlike the galaxies the model learnt from (unfamiliarity 3.0"),
    (0.5, {"ood_max": 1.0, "confidence_floor": 0.999}, "the model is unsure"),
])
def test_an_unfamiliar_galaxy_or_an_unsure_model_gets_no_preselected_answer(workspace, ood, gate, reason):
    _gate(workspace, ood=ood, **gate)
    at = signed_in("vera", "volunteer-pw")
    assert not any("Model proposal" in m.value for m in at.markdown)
    assert not [b for b in at.button if b.key == "cls_confirm"]
    assert any("No model proposal" in i.value and reason in i.value for i in at.info), [i.value for i in at.info]
    # no answer is pre-selected (primary) on the first question
    assert all(b.proto.type != "primary" for b in at.button if (b.key or "").startswith("ans_"))
    for key in ("ans_t01_smooth", "ans_t07_round", "ans_t06_no"):
        at.button(key=key).click().run()
    n, rows = votes(workspace)
    assert n == 1 and rows[0][1] is None  # the vote records that no proposal was shown


def test_a_familiar_galaxy_keeps_its_proposal(workspace):
    _gate(workspace, ood=0.5, ood_max=1.0, confidence_floor=0.0)
    at = signed_in("vera", "volunteer-pw")
    assert any("Model proposal" in m.value for m in at.markdown)
    assert not any("No model proposal" in i.value for i in at.info)


def test_a_blind_control_task_shows_nothing_and_records_the_hidden_proposal(workspace):
    from sqlalchemy import select

    from galaxalign.store import open_store, set_blind_fraction
    from galaxalign.store.models import Classification
    from galaxalign.workspace import Workspace

    _gate(workspace, ood=0.5, ood_max=1.0, confidence_floor=0.0)
    store = open_store(Workspace(workspace).database_url)
    set_blind_fraction(store, "demo", 1.0)  # every task a control
    at = signed_in("vera", "volunteer-pw")
    assert not any("Model proposal" in m.value for m in at.markdown)
    assert not any("No model proposal" in i.value for i in at.info)  # a control is not announced
    for key in ("ans_t01_smooth", "ans_t07_round", "ans_t06_no"):
        at.button(key=key).click().run()
    with store.read() as s:
        c = s.scalars(select(Classification)).one()
    assert c.blind is True and c.proposal_class is not None and c.accepted is None
    store.dispose()


def test_admin_sees_the_anchoring_control(workspace):
    at = signed_in("adam", "admin-password")
    at.switch_page(str(VIEWS / "admin.py")).run()
    assert not at.exception
    assert any(h.value == "Anchoring control" for h in at.subheader)
    assert any("Not enough votes yet" in i.value for i in at.info)  # a fresh workspace has no blind votes
    at.slider(key="adm_blind").set_value(0.25).run()
    assert not at.exception

    from galaxalign.store import get_survey, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    assert get_survey(store, "demo").blind_fraction == 0.25
    store.dispose()


def test_admin_sees_an_adaptation_with_its_domain_auc_and_its_accuracy_on_the_targets_labels(workspace):
    from galaxalign.store import active_model, open_store, register_model
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    starter = active_model(store)
    register_model(store, "adapt-elsewhere", starter.checkpoint_path, {}, {
        "domain_auc_before": 0.91, "domain_auc_after": 0.62, "adapted_from": starter.name, "align": "ot",
        "target_accuracy_before": 0.41, "target_accuracy_after": 0.47, "target_scored": 300}, parent_id=starter.id)
    store.dispose()
    at = signed_in("adam", "admin-password")
    at.switch_page(str(VIEWS / "admin.py")).run()
    assert not at.exception
    assert any("**Adaptations**" in m.value for m in at.markdown)
    table = next(d.value for d in at.dataframe if "AUC after" in d.value.columns)
    row = table.set_index("version").loc["adapt-elsewhere"]
    assert (row["from"], row["alignment"]) == (starter.name, "ot")
    assert (row["AUC before"], row["AUC after"]) == (0.91, 0.62)
    assert (row["accuracy before"], row["accuracy after"], row["labelled"]) == (0.41, 0.47, 300)


def test_admin_sets_the_retirement_rule(workspace):
    at = signed_in("adam", "admin-password")
    at.switch_page(str(VIEWS / "admin.py")).run()
    assert any(h.value == "Retirement" for h in at.subheader)
    at.radio(key="adm_ret_method").set_value("skill")
    at.number_input(key="adm_ret_model").set_value(2.0)
    at.button(key="adm_ret_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved the retirement rule of 'demo'" in s.value for s in at.success)

    from galaxalign.store import get_survey, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    rule = get_survey(store, "demo").retirement
    assert rule["method"] == "skill" and rule["model_votes"] == 2.0 and rule["n_votes"] == 5
    store.dispose()


def test_every_vote_teaches_from_the_admin_page_and_the_classify_page(workspace):
    from galaxalign.jobs import refresh
    from galaxalign.store import active_model, get_survey, list_jobs, open_store
    from galaxalign.workspace import Workspace

    at = signed_in("adam", "admin-password")
    at.switch_page(str(VIEWS / "admin.py")).run()
    assert any(h.value == "Every vote teaches" for h in at.subheader)
    at.number_input(key="adm_refresh_every").set_value(2)
    at.selectbox(key="adm_queue_strategy").set_value("bald")
    at.button(key="adm_votes_save").click().run()
    assert not at.exception, at.exception
    assert any("refreshes every 2 votes; the queue puts bald first" in s.value for s in at.success)
    w = Workspace(workspace)
    store = open_store(w.database_url)
    row = get_survey(store, "demo")
    assert (row.refresh_every, row.queue_strategy) == (2, "bald")
    # two votes on Classify: the second queues the refresh (the volunteer sees nothing of it)
    vol = signed_in("vera", "volunteer-pw")
    for _ in range(2):
        vol.button(key="cls_confirm").click().run()   # take the model's proposal: one vote each
    assert not vol.exception
    jobs = [j for j in list_jobs(store) if j.kind == "refresh"]
    assert len(jobs) == 1 and jobs[0].state == "queued" and jobs[0].params["survey"] == "demo"
    refresh(store, w, None, jobs[0].params)        # what the worker runs
    at.run()
    assert any(f"Last refresh of {active_model(store).name} on demo" in c.value for c in at.caption)
    store.dispose()


def test_a_hunt_is_started_by_a_researcher_and_worked_from_the_keyboard(workspace):
    at = signed_in("rosa", "researcher-pw")
    at.switch_page(str(VIEWS / "hunt.py")).run()
    assert not at.exception, at.exception
    assert any("No hunt in this survey yet" in i.value for i in at.info)
    at.text_input(key="hunt_name").set_value("cigars")
    at.text_input(key="hunt_text").set_value("A picture of a cigar shaped smooth galaxy")
    at.selectbox(key="hunt_target").set_value("Cigar Shaped Smooth")
    at.button(key="hunt_start").click().run()
    assert not at.exception, at.exception
    assert any("Hunt 'cigars' started" in s.value for s in at.success)
    rows = at.session_state["hunt_grid"]["rows"]
    assert len(rows) == 24 and len(set(rows)) == 24
    # the keyboard: → → Space marks the third; ↓ Space marks the ninth; a click marks the first
    at.button(key="hunt_right").click().run()
    at.button(key="hunt_right").click().run()
    at.button(key="hunt_toggle").click().run()
    at.button(key="hunt_down").click().run()
    at.button(key="hunt_toggle").click().run()
    at.checkbox(key="hunt_mark_0").check().run()
    assert [k for k in range(24) if at.session_state[f"hunt_mark_{k}"]] == [0, 2, 8]
    at.button(key="hunt_send").click().run()
    assert not at.exception, at.exception

    from galaxalign.store import hunt_votes, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    v = hunt_votes(store, "cigars")
    assert len(v) == 24 and sorted(v[v.status == "confirmed"].idx) == sorted([rows[0], rows[2], rows[8]])
    nxt = at.session_state["hunt_grid"]["rows"]
    assert not set(nxt) & set(rows)  # the next grid shows nothing decided
    assert any("Confirmed (3)" == h.value for h in at.subheader)
    store.dispose()
    # a volunteer works the same hunt but cannot start one
    at = signed_in("vera", "volunteer-pw")
    at.switch_page(str(VIEWS / "hunt.py")).run()
    assert not at.exception and not at.expander and at.selectbox(key="hunt_pick").value == "cigars"


def test_a_volunteer_favourites_and_flags_a_galaxy_as_odd(workspace):
    at = signed_in("vera", "volunteer-pw")
    gid = at.session_state["cls_galaxy"]
    at.button(key="cls_fav").click().run()
    assert not at.exception, at.exception
    assert at.button(key="cls_fav").label == "★ Favourite"
    at.radio(key="cls_odd_reason").set_value("lens or arc")
    at.button(key="cls_odd_flag").click().run()
    assert not at.exception, at.exception

    from galaxalign.store import get_galaxy, open_store, volunteer_flags
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    flags = volunteer_flags(store, "vera")
    g = get_galaxy(store, gid)
    store.dispose()
    assert sorted(zip(flags.kind, flags.reason.fillna(""))) == [("favourite", ""), ("odd", "lens or arc")]
    assert set(flags.id_str) == {g.id_str}


def test_a_new_volunteer_sees_the_tutorial_once_and_can_reopen_it(workspace):
    at = signed_in("vera", "volunteer-pw")
    assert not at.exception, at.exception
    assert any("How classifying works" in m.value for m in at.markdown)
    at.button(key="cls_tutorial_done").click().run()
    assert not any("How classifying works" in m.value for m in at.markdown)
    at = signed_in("vera", "volunteer-pw")  # a new session: not shown again
    assert not any("How classifying works" in m.value for m in at.markdown)
    at.button(key="cls_tutorial_again").click().run()  # … unless asked for
    assert any("How classifying works" in m.value for m in at.markdown)


def test_my_progress_shows_votes_agreement_and_favourites(workspace):
    from galaxalign.data import load_survey
    from galaxalign.store import open_store, record_classification, set_flag
    from galaxalign.workspace import Workspace

    at = signed_in("vera", "volunteer-pw")
    at.switch_page(str(VIEWS / "progress.py")).run()
    assert not at.exception and any("No classifications yet" in i.value for i in at.info)
    store = open_store(Workspace(workspace).database_url)
    ids = load_survey(Workspace(workspace).demo_survey).id_str
    path = [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]
    for who in ("vera", "rosa"):
        for g in ids[:3]:
            record_classification(store, who, g, path)
    set_flag(store, "vera", ids[0], "favourite")
    store.dispose()
    at.run()
    assert not at.exception, at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Classifications"] == "3" and values["Agreement with the crowd"] == "100%"
    assert values["Favourites"] == "1"
    assert any(h.value == "My favourites (1)" for h in at.subheader)


def test_a_rendered_gold_galaxy_is_shown_from_its_own_file(workspace, monkeypatch):
    from galaxalign.importer import inject_gold
    from galaxalign.store import get_galaxy, get_survey, open_store
    from galaxalign.workspace import Workspace

    from sqlalchemy import update

    from galaxalign.store.models import Galaxy

    store = open_store(Workspace(workspace).database_url)
    demo_id = get_survey(store, "demo").id
    store.write(lambda s: s.execute(update(Galaxy).where(Galaxy.survey_id == demo_id).values(gold=False)))
    inject_gold(store, Workspace(workspace), "demo", n=4, seed=2)  # the only gold now: rendered
    gold_id = get_survey(store, "demo-gold").id
    monkeypatch.setattr("galaxalign.store.queue.gold_rate_for", lambda answered: 1.0)  # always a gold task
    at = signed_in("vera", "volunteer-pw")
    assert not at.exception, at.exception
    g = get_galaxy(store, at.session_state["cls_galaxy"])
    store.dispose()
    assert g.gold and g.survey_id == gold_id
    at.button(key="ans_t01_smooth").click().run()  # answered like any galaxy of the survey
    assert not at.exception, at.exception


def test_explore_colours_and_filters_by_volunteer_flags(workspace):
    import json

    from galaxalign.data import load_survey
    from galaxalign.store import open_store, set_flag
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    ids = load_survey(Workspace(workspace).demo_survey).id_str
    set_flag(store, "vera", ids[3], "odd", reason="ring")
    set_flag(store, "vera", ids[5], "favourite")
    store.dispose()
    at = signed_in("rosa", "researcher-pw")
    at.switch_page(str(VIEWS / "explore.py")).run()
    at.selectbox(key="exp_colour").set_value("volunteer flags").run()
    at.checkbox(key="exp_flagged").check().run()
    assert not at.exception, at.exception
    assert any("2 flagged galaxies (1 as odd)" in c.value for c in at.caption)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    drawn = sorted(h for trace in fig["data"] for h in trace.get("hovertext", []))
    assert drawn == sorted([str(ids[3]), str(ids[5])])


def test_talk_a_comment_with_a_hashtag_collects_the_galaxy_and_an_admin_hides_a_hostile_one(workspace):
    at = signed_in("vera", "volunteer-pw")
    gid = at.session_state["cls_galaxy"]
    at.button(key="cls_talk").click().run()  # Classify → this galaxy's thread
    assert not at.exception, at.exception
    assert at.title[0].value == "Talk" and at.session_state["talk_galaxy"] == gid
    at.text_area(key=f"talk_body_{gid}").set_value("Is that a **ring**? #Ring @rosa")
    at.button[[b.label for b in at.button].index("Post")].click().run()
    assert not at.exception, at.exception
    shown = [h.proto.body for h in at.get("html") if h.proto.body.startswith("<div class=\"ga-comment")]
    assert shown == ['<div class="ga-comment"><p>Is that a <strong>ring</strong>? <span class="ga-tag">#ring</span> '
                     '<span class="ga-mention">@rosa</span></p>\n</div>']
    at.text_area(key=f"talk_body_{gid}").set_value(
        "<script>alert(1)</script> <img src=x onerror=alert(2)> [win](javascript:alert(3))")
    at.button[[b.label for b in at.button].index("Post")].click().run()
    hostile = [h.proto.body for h in at.get("html") if h.proto.body.startswith("<div class=\"ga-comment")][1]
    assert "&lt;script&gt;" in hostile and "<script" not in hostile and "<img" not in hostile and "href" not in hostile
    at.segmented_control(key="talk_view").set_value("Tags").run()  # the tag collects the galaxy
    assert not at.exception, at.exception
    assert at.selectbox(key="talk_tag").value == "ring"
    assert at.button(key=f"talk_tag_open_{gid}")

    admin = signed_in("adam", "admin-password")
    admin.switch_page(str(VIEWS / "talk.py")).run()
    assert not admin.exception, admin.exception
    from galaxalign.store import galaxy_comments, moderation_log, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    bad = int(galaxy_comments(store, gid).comment_id.iloc[1])
    admin.button(key=f"talk_hide_recent_{bad}").click().run()
    assert not admin.exception, admin.exception
    assert list(galaxy_comments(store, gid).comment_id) != [] and bad not in set(galaxy_comments(store, gid).comment_id)
    assert list(moderation_log(store).action) == ["hide"]
    store.dispose()
    at.segmented_control(key="talk_view").set_value("Recent").run()  # the volunteer no longer sees it
    assert not any("&lt;script&gt;" in h.proto.body for h in at.get("html"))


def test_an_admin_suspends_a_volunteer_from_a_comment_with_the_reason_typed(workspace):
    from galaxalign.data import load_survey
    from galaxalign.store import get_volunteer, moderation_log, open_store, post_comment
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    cid = post_comment(store, "vera", load_survey(Workspace(workspace).demo_survey).id_str[0], "spam spam spam")
    admin = signed_in("adam", "admin-password")
    admin.switch_page(str(VIEWS / "talk.py")).run()
    admin.text_input(key=f"talk_why_recent_{cid}").set_value("spamming")  # typed, then the button at once
    admin.button(key=f"talk_sus_recent_{cid}").click().run()
    assert not admin.exception, admin.exception
    log = moderation_log(store)
    assert list(zip(log.action, log.volunteer, log.reason)) == [("suspend", "vera", "spamming")]
    assert get_volunteer(store, "vera").talk_suspended_at is not None
    store.dispose()


# --- the doors (issue 23) ---------------------------------------------------------------------------------

def _settings(root, **kw):
    from galaxalign.store import open_store, set_project_settings
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(root).database_url)
    set_project_settings(store, None, **kw)
    store.dispose()


def test_before_the_first_model_lands_home_and_classify_say_it_is_learning_and_how_far(tmp_path, synth_h5, monkeypatch):
    """`make run` serves the app while the worker trains the starter: a visitor reads that the model is
    learning and how far it has come (not the job's epochs and loss), on Home and on Classify."""
    import shutil

    import streamlit as st

    from galaxalign.jobs import bootstrap
    from galaxalign.store import claim_job, open_store, update_job
    from galaxalign.workspace import Workspace

    monkeypatch.delenv("GALAXALIGN_DATABASE_URL", raising=False)
    monkeypatch.delenv("GALAXALIGN_REDIS_URL", raising=False)
    w = Workspace(tmp_path / "ws").create()
    shutil.copy(synth_h5, w.demo_survey)
    job = bootstrap(w, survey="demo", starter="job", progress=False)["starter_job"]
    monkeypatch.setenv("GALAXALIGN_WORKSPACE", str(w.root))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    bars = [p.proto.text for p in at.get("progress") if "learning" in p.proto.text]
    assert bars == ["The model is learning from the first labels (waiting to start). Its proposals appear on "
                    "Classify when it is ready."]
    store = open_store(w.database_url)
    claim_job(store, job, 1)
    update_job(store, job, progress=0.4, message="stage 1 epoch 4/4 loss 4.6856")
    store.dispose()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=120).run()
    bars = [p.proto.text for p in at.get("progress") if "learning" in p.proto.text]
    assert len(bars) == 1 and "(40% done)" in bars[0] and "loss" not in bars[0], bars
    at.button(key="home_classify").click().run()
    assert not at.exception, at.exception
    assert any("still learning (40%)" in c.value for c in at.caption), [c.value for c in at.caption]


def test_a_visitor_lands_on_the_home_page_classifies_as_a_guest_and_joins_keeping_the_votes(workspace):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "galaxalign"  # the project's home page, not a sign-in form
    assert any("Help us sort the galaxies" in h.proto.body for h in at.get("html"))
    assert any("galaxies retired" in p.proto.text for p in at.get("progress"))
    assert "Join" in str(at.sidebar) or any(b.label == "Join the project" for b in at.button)
    at.button(key="home_classify").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Classify" and "user" not in at.session_state  # no row until the first vote
    for _ in range(3):
        for key in ("ans_t01_smooth", "ans_t07_round", "ans_t06_no"):
            at.button(key=key).click().run()
            assert not at.exception, at.exception
    guest = at.session_state["user"]
    assert guest["role"] == "guest" and guest["name"].startswith("guest-")
    assert votes(workspace)[0] == 3
    at.switch_page(str(VIEWS / "join.py")).run()
    at.text_input(key="join_name").set_value("Henrietta")
    at.text_input(key="join_password").set_value("nebula-cartwheel-lantern")
    at.button[[b.label for b in at.button].index("Join")].click().run()
    assert not at.exception, at.exception
    assert at.session_state["user"]["id"] == guest["id"]  # the guest row became the account
    at.switch_page(str(VIEWS / "progress.py")).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "My progress" and at.metric[0].value == "3"
    from galaxalign.store import get_volunteer, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    assert get_volunteer(store, "henrietta").role == "volunteer"
    store.dispose()


def test_sign_up_refuses_a_taken_name_in_another_case_with_one_line(workspace):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(str(VIEWS / "join.py")).run()
    at.text_input(key="join_name").set_value("VERA")
    at.text_input(key="join_password").set_value("nebula-cartwheel-lantern")
    at.button[[b.label for b in at.button].index("Join")].click().run()
    assert not at.exception and "user" not in at.session_state
    assert at.error[0].value == "volunteer 'VERA' already exists (as 'vera')."
    at.text_input(key="join_name").set_value("Cecilia")
    at.text_input(key="join_password").set_value("password1")
    at.button[[b.label for b in at.button].index("Join")].click().run()
    msg = at.error[0].value
    assert msg.startswith("password: too weak") and msg.endswith(".") and not msg.endswith("..") and "\n" not in msg
    assert "user" not in at.session_state


def test_an_invite_only_project_shows_no_join_and_a_link_opens_the_form(workspace):
    _settings(workspace, join="invite", guests=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert not any(b.label == "Start classifying" for b in at.button)
    with pytest.raises(Exception):  # Join is not in a visitor's navigation without a link
        at.switch_page(str(VIEWS / "join.py")).run()
        assert not at.exception and at.title[0].value.startswith("Join")
    from galaxalign.access import make_link
    from galaxalign.store import create_link, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    token = make_link(store, create_link(store, "adam", "invite"), "invite").split("invite=")[1]
    store.dispose()
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["invite"] = token
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value.startswith("Join") and "invited to join as a **volunteer**" in at.success[0].value


def test_admin_manages_people_and_a_role_change_applies_on_the_next_run(workspace):
    vera = signed_in("vera", "volunteer-pw")
    with pytest.raises(Exception):  # not in a volunteer's navigation
        vera.switch_page(str(VIEWS / "explore.py")).run()
    vera._page_hash = ""
    at = signed_in("adam", "admin-password")
    at.switch_page(str(VIEWS / "accounts.py")).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "People"
    at.selectbox(key="acc_who").set_value("vera").run()
    at.selectbox(key="acc_new_role").set_value("researcher").run()
    at.button(key="acc_set_role").click().run()
    assert not at.exception and "vera is now a researcher" in at.success[0].value
    vera.run()  # vera's next request: the store's role, not the one she signed in with
    assert vera.session_state["user"]["role"] == "researcher" and "researcher" in vera.sidebar.markdown[0].value
    vera.switch_page(str(VIEWS / "explore.py")).run()
    assert not vera.exception and vera.title[0].value.startswith("Explore")
    at.selectbox(key="acc_who").set_value("vera").run()
    at.text_input(key="acc_reason").set_value("testing suspension")  # typed, then pressed: one run
    at.button(key="acc_suspend").click().run()
    assert not at.exception and "vera is suspended" in at.success[0].value
    vera.run()
    assert "user" not in vera.session_state  # signed out by the suspension
    from galaxalign.store import get_volunteer, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(workspace).database_url)
    assert get_volunteer(store, "vera").suspended_reason == "testing suspension"
    store.dispose()
