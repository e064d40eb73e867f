"""Making a workspace ready for the app (``galaxalign demo``, ``make run``): the embedded survey, the store,
the admin, the project's home page and the starter model."""
from __future__ import annotations

import secrets
import time
from pathlib import Path

from ..data import first_package_dir, load_survey
from ..errors import GalaxalignError
from ..fsutil import atomic_path
from ..importer import import_field, import_path
from ..store import (NotFound, add_admin, default_home_text, get_volunteer, list_jobs, list_model_versions,
                     list_surveys, open_store, project_settings, register_survey, set_project_settings)
from ..workspace import Workspace
from .adapt import adapt
from .embed import embed_version
from .queue import enqueue, reap_stale_jobs
from .retrain import retrain

__all__ = ["bootstrap", "ensure_demo_survey", "hxdf_picture", "DEMO_SURVEYS", "STARTER_MODES", "FIRST_CONFIG",
           "DEMO_SURVEY_N", "DEMO_SURVEY_SIZE"]

DEMO_SURVEY_N = 2000
DEMO_SURVEY_SIZE = 64
DEMO_SURVEY_SEED = 7


def ensure_demo_survey(workspace: Workspace, n: int = DEMO_SURVEY_N, size: int = DEMO_SURVEY_SIZE,
                       progress: bool = True):
    """Render the demo survey (GalSim) if it is missing; returns the synth stats, or ``None`` if it existed."""
    from ..synth import synth_survey  # GalSim: heavy, and only on this path

    workspace.create()
    if workspace.demo_survey.exists():
        return None
    return synth_survey(workspace.demo_survey, n=n, size=size, seed=DEMO_SURVEY_SEED, progress=progress)


DEMO_SURVEYS = ("demo", "first", "hxdf")
FIRST_CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "first-cpu.yaml")
TITLES = {"first": ("Radio Galaxy Zoo · FIRST",
                    "Sort real radio galaxies from the VLA's FIRST survey by the shape of their jets."),
          "hxdf": ("Galaxy Zoo · Hubble eXtreme Deep Field",
                   "Classify real galaxies in the deepest picture of the sky, found and cut out of the field.")}


STARTER_MODES = ("now", "job")


def hxdf_picture(workspace: Workspace) -> Path:
    """The Hubble eXtreme Deep Field as scikit-image ships it (real HST data combined into RGB; nothing
    is downloaded), written once into the workspace as the field to import."""
    out = workspace.surveys / "hxdf.png"
    if not out.exists():
        from PIL import Image
        from skimage import data as skdata

        workspace.create()
        with atomic_path(out) as tmp:
            Image.fromarray(skdata.hubble_deep_field()).save(tmp, format="PNG")
    return out


def _register(store, workspace: Workspace, survey: str, config: str | None, progress: bool) -> dict:
    """The embedded survey registered (and, for the HXDF, the demo survey its starter learns from)."""
    out: dict = {}
    registered = [s.name for s in list_surveys(store)]
    if survey == "first" and "first" not in registered:
        # volunteers are there to label what experts have not: a fifth of the train split is left to them
        first_zip = first_package_dir() / "galaxy_data_h5.zip"
        out["import"] = import_path(store, workspace, first_zip, "first", workflow="flat",
                                    train_config=config or FIRST_CONFIG, progress=progress, known_fraction=0.8)
    if survey == "hxdf" and "hxdf" not in registered:  # first registered: the survey the app opens on
        out["import"] = import_field(store, workspace, [hxdf_picture(workspace)], "hxdf",
                                     preview=workspace.root / "hxdf-preview.png", progress=progress)
    if survey in ("demo", "hxdf") and "demo" not in registered:
        # volunteers are there to label what experts have not: a fifth of the demo is left to them
        register_survey(store, load_survey(workspace.demo_survey), "demo", known_fraction=0.8)
    return out


def _admin(store, workspace: Workspace) -> str:
    admin_pw_file = workspace.root / "admin-password.txt"
    try:
        get_volunteer(store, "admin")
    except NotFound:
        pw = secrets.token_urlsafe(12)
        add_admin(store, "admin", pw)
        admin_pw_file.write_text(pw + "\n")
        admin_pw_file.chmod(0o600)
    return str(admin_pw_file)


def _starter_jobs(survey: str, config: str | None) -> list[tuple[str, dict]]:
    """What makes the starter: trained on the survey's own labels — for the HXDF, which has none, on our
    diverse sky (the demo survey) — then, for the HXDF, the field embedded with it and an adaptation to
    the field's galaxies queued as a candidate (its domain AUC says whether it helped)."""
    trained_on = "demo" if survey == "hxdf" else survey
    jobs = [("retrain", {"survey": trained_on, "config": config, "name": "starter", "force_activate": True})]
    if survey == "hxdf":
        jobs += [("embed", {"survey": "hxdf", "model": "starter"}),
                 ("adapt", {"survey": "hxdf", "model": "starter", "name": "starter-hxdf"})]
    return jobs


def bootstrap(workspace: Workspace, n: int | None = None, config: str | None = None, progress: bool = True,
              survey: str = "demo", starter: str = "now") -> dict:
    """Make a workspace ready for the app: the embedded survey, store, survey registered, admin account,
    the project's home page text, and a starter model trained, registered, embedded and activated. Each
    step is skipped if done.

    ``starter``: ``now`` trains it here before returning; ``job`` queues it as the worker's first job
    (``make run``: the app serves the survey at once — nothing on Classify needs a model — and the
    proposals appear when the job lands). Returns ``{"starter_job": id}`` when it queued one.

    ``survey``: ``demo`` (our synthetic Galaxy10 survey, the GZ2 workflow), ``first`` (the real FIRST
    radio galaxies of the ``firstgalaxydata`` package, the flat workflow with radio symbols; its
    preparation is detected from the images and printed) or ``hxdf`` (the galaxies of the Hubble
    eXtreme Deep Field, detected and cut out of the field scikit-image ships; GZ2 workflow; the starter
    learns on the demo survey, then is adapted to the field)."""
    if survey not in DEMO_SURVEYS:
        raise GalaxalignError(f"embedded survey {survey!r} is not one of {', '.join(DEMO_SURVEYS)}")
    if starter not in STARTER_MODES:
        raise GalaxalignError(f"starter {starter!r} is not one of {', '.join(STARTER_MODES)}")
    if survey in ("demo", "hxdf"):
        ensure_demo_survey(workspace, **({"n": n} if n else {}), progress=progress)
    else:
        workspace.create()
    store = open_store(workspace.database_url)
    try:
        out = _register(store, workspace, survey, config, progress)
        out["admin_password_file"] = _admin(store, workspace)
        if project_settings(store).home_text is None and survey in TITLES:
            title, tagline = TITLES[survey]
            set_project_settings(store, None, title=title, tagline=tagline, home_text=default_home_text(survey))
        if not list_model_versions(store) and starter == "job":
            reap_stale_jobs(store, workspace=workspace)  # a starter whose worker was stopped is not pending
            pending = [j for j in list_jobs(store, 200) if j.kind == "retrain" and j.state in ("queued", "running")
                       and (j.params or {}).get("name") == "starter"]
            if pending:
                out["starter_job"] = pending[0].id
            else:
                ids = [enqueue(store, kind, params, workspace=workspace) for kind, params in _starter_jobs(survey, config)]
                out["starter_job"], out["starter_jobs"] = ids[0], ids
        elif not list_model_versions(store):
            t0 = time.perf_counter()
            steps = {"retrain": lambda p: retrain(store, workspace, None, p, show_bar=progress),
                     "embed": lambda p: embed_version(store, workspace, None, p),
                     "adapt": lambda p: adapt(store, workspace, None, p, show_bar=progress)}
            results = [steps[kind](params) for kind, params in _starter_jobs(survey, config)]
            out["starter"] = {**results[0], "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        store.dispose()
    return out
