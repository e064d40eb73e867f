"""``galaxalign …``: the command line. Glue only; every command calls the package.

Errors a user can cause print one line, ``error: <file or id>: <problem>``, and exit with status 2.
Set ``GALAXALIGN_DEBUG=1`` to see the traceback instead.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import click
import typer

from .errors import GalaxalignError, os_error_message

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="GalaxAlign galaxy morphology: synthetic surveys, symbols, training, annotation.")


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@app.command()
def symbols(out: Path = typer.Option(None, help="Folder for the PNGs (default: assets/symbols)"),
            size: int = typer.Option(128, help="Side of each symbol in pixels")):
    """Regenerate the schematic symbol PNGs (37 GZ2 answers + one per class)."""
    from .symbols import SYMBOL_DIR, write_symbols

    paths = write_symbols(out or SYMBOL_DIR, size)
    typer.echo(f"wrote {len(paths)} symbols to {out or SYMBOL_DIR}")


@app.command()
def synth(n: int = typer.Option(1000, "--n", help="Number of galaxies"),
          size: int = typer.Option(64, help="Image side in pixels"),
          seed: int = typer.Option(0, help="Random seed: the same seed gives the same file"),
          out: Path = typer.Option(..., help="Output HDF5 file"),
          workers: Optional[int] = typer.Option(None, help="Processes (default: all cores)"),
          sky: str = typer.Option("diverse", help="diverse: every nuisance drawn at random (PSF, depth, field, "
                                                  "bands, stretch); classic: the first renderer (wave-1 figures)"),
          hold: Optional[str] = typer.Option(None, help="Render one held-out factor's test ranges: "
                                                        "psf_kolmogorov, crowded_field, pixel_scale, band_set_hst")):
    """Render a synthetic Galaxy10 DECaLS survey with GalSim."""
    from .sky import HELD_OUT
    from .synth import SKIES, synth_survey

    if sky not in SKIES:
        raise GalaxalignError(f"--sky must be one of {', '.join(SKIES)}, got {sky!r}")
    if hold is not None and hold not in HELD_OUT:
        raise GalaxalignError(f"--hold must be one of {', '.join(HELD_OUT)}, got {hold!r}")
    stats = synth_survey(out, n=n, size=size, seed=seed, workers=workers, sky=sky,
                         nuisance=HELD_OUT[hold][1] if hold else None)
    typer.echo(f"wrote {stats['n']} galaxies ({size}×{size}) to {out} in {stats['seconds']:.1f} s: "
               f"{stats['galaxies_per_second']:.1f} galaxies/s with {stats['workers']} worker(s)")


@app.command()
def info(path: Path = typer.Argument(..., help="A survey: .h5 file, GalaxyMNIST folder, folder with catalog.csv"),
         as_json: bool = typer.Option(False, "--json", help="Print JSON")):
    """Summarise a survey: count, image shape, class counts."""
    from .data import load_survey, survey_summary

    s = survey_summary(load_survey(path))
    if as_json:
        _echo_json(s)
        return
    h, w, c = s["image_shape"]
    typer.echo(f"{s['path']}  ({s['kind']}, label set: {s['label_set'] or 'custom'})")
    raw = s["raw_shape"]
    if list(raw) == [h, w, c] and s["raw_dtype"] == "uint8":
        typer.echo(f"{s['galaxies']} galaxies, images {h}×{w}×{c} uint8")
    else:
        bands = raw[2] if len(raw) > 2 else 1
        typer.echo(f"{s['galaxies']} galaxies, images {raw[0]}×{raw[1]}, {bands} band{'s' if bands > 1 else ''}, "
                   f"{s['raw_dtype']} (`galaxalign prepare` shows how they become pictures)")
    if s.get("split"):
        typer.echo("split: " + ", ".join(f"{k} {v}" for k, v in s["split"].items()))
    width = max((len(k) for k in s["classes"]), default=0)
    for name, count in s["classes"].items():
        typer.echo(f"  {name:<{width}}  {count:>7}  {count / s['galaxies']:6.1%}")


def _workspace(path: Optional[Path]):
    from .workspace import Workspace, default_workspace

    return Workspace(path) if path else default_workspace()


@app.command()
def demo(workspace: Path = typer.Option(None, help="Workspace folder (default $GALAXALIGN_WORKSPACE or ./workspace)"),
         n: int = typer.Option(None, "--n", help="Galaxies in the demo survey"),
         train: bool = typer.Option(True, help="Also register the survey, create the admin and train the starter model"),
         survey: str = typer.Option("demo", help="demo (synthetic Galaxy10, GZ2 tree), first (real FIRST radio galaxies) "
                                                  "or hxdf (galaxies of the Hubble eXtreme Deep Field)"),
         starter: str = typer.Option("now", help="now: train the starter model here; job: queue it as the worker's "
                                                 "first job (make run: the app serves at once)")):
    """Build the embedded demo workspace: survey, store, admin account, starter model."""
    from .jobs import bootstrap, ensure_demo_survey

    ws = _workspace(workspace)
    if not train:
        stats = ensure_demo_survey(ws, **({"n": n} if n else {}))
        typer.echo(f"demo survey: {ws.demo_survey}" + (f" ({stats['galaxies_per_second']:.1f} galaxies/s)" if stats else ""))
        return
    if survey == "demo" and not ws.demo_survey.exists():
        typer.echo(f"rendering the demo survey into {ws.demo_survey} …")
    out = bootstrap(ws, n=n, survey=survey, starter=starter)
    if "import" in out:
        imp = out["import"]
        typer.echo(f"imported {imp['galaxies']} galaxies as survey {imp['name']!r}; preparation: {imp['preparation_text']}")
        for r in imp["reasons"]:
            typer.echo(f"  - {r}")
    if "starter" in out:
        m = out["starter"]["metrics"]
        typer.echo(f"starter model trained in {out['starter']['seconds']:.0f} s: accuracy {m['accuracy']:.3f}, "
                   f"macro-F1 {m['macro_f1']:.3f}, mAP {m['map']:.3f}")
    if "starter_job" in out:
        typer.echo(f"starter model queued as job {out['starter_job']}: the worker trains it while volunteers classify; "
                   "proposals appear when it lands (Admin shows its progress)")
    typer.echo(f"workspace ready: {ws.root}  (admin password in {out['admin_password_file']})")


@app.command()
def worker(workspace: Path = typer.Option(None, help="Workspace folder"),
           workers: int = typer.Option(1, help="Jobs run at once")):
    """Run the job consumer (huey): re-training and re-embedding. Stop with Ctrl-C."""
    import logging

    from .jobs import get_huey, reap_stale_jobs
    from .store import open_store

    ws = _workspace(workspace)
    store = open_store(ws.database_url)
    reaped = reap_stale_jobs(store, workspace=ws)
    store.dispose()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if reaped:
        logging.getLogger("galaxalign").warning("marked stale job(s) %s as failed", reaped)
    huey = get_huey(str(ws.root))
    typer.echo(f"worker: queue {'redis' if os.environ.get('GALAXALIGN_REDIS_URL') else ws.root / 'huey.db'}, "
               f"store {ws.database_url}", err=True)
    # an idle consumer polls at most a second apart (huey's default backs off to 10 s): a queued job, or a
    # shard another worker could take, does not wait
    huey.create_consumer(workers=workers, worker_type="thread", periodic=True, max_delay=1.0).run()


@app.command()
def retrain(workspace: Path = typer.Option(None, help="Workspace folder"),
            survey: Optional[str] = typer.Option(None, help="Survey name (default: the first)"),
            stage1_epochs: Optional[int] = typer.Option(None), stage2_epochs: Optional[int] = typer.Option(None),
            force_activate: bool = typer.Option(False, help="Activate even if worse than the active model"),
            from_scratch: bool = typer.Option(False, help="Do not start from the active model"),
            learn_from: str = typer.Option("consensus", help="consensus (known and retired galaxies' labels) or "
                                                             "votes (every galaxy's vote counts as well)"),
            wait: bool = typer.Option(False, help="Run here and now instead of queueing for the worker")):
    """Queue a re-training job (or run it here with --wait)."""
    from .jobs import enqueue, retrain as retrain_job
    from .store import open_store

    ws = _workspace(workspace)
    store = open_store(ws.database_url)
    params = {k: v for k, v in dict(survey=survey, stage1_epochs=stage1_epochs, stage2_epochs=stage2_epochs,
                                    force_activate=force_activate, from_scratch=from_scratch,
                                    learn_from=learn_from).items() if v}
    if wait:
        _echo_json(retrain_job(store, ws, None, params, show_bar=True))
    else:
        typer.echo(f"queued job {enqueue(store, 'retrain', params, workspace=ws)}; `galaxalign worker` runs it")


@app.command()
def refresh(survey: Optional[str] = typer.Option(None, help="Registered survey (default: the first)"),
            every: Optional[int] = typer.Option(None, help="From now on, refresh after every this many new votes "
                                                           "(0: never); without --wait only this is set"),
            queue: Optional[str] = typer.Option(None, help="What the survey's queue puts first: entropy, margin, "
                                                           "disagreement, bald or random"),
            heads: int = typer.Option(5, help="Heads in the ensemble (its disagreement is the bald queue's score)"),
            pseudo: float = typer.Option(0.0, help="Confidence from which unvoted galaxies join as pseudo-votes "
                                                   "(0: none)"),
            workspace: Path = typer.Option(None, help="Workspace folder"),
            wait: bool = typer.Option(False, help="Refresh here and now instead of queueing for the worker")):
    """Refit the active model's proposals on every vote so far (seconds; the model file is not touched)."""
    from .jobs import RefreshParams, enqueue, refresh as refresh_job
    from .store import get_survey, list_surveys, open_store, set_queue_strategy, set_refresh_every

    ws = _workspace(workspace)
    store = open_store(ws.database_url)
    surveys = list_surveys(store)
    name = get_survey(store, survey).name if survey else (surveys[0].name if surveys else None)
    if name is None:
        raise GalaxalignError("no survey is registered; run `galaxalign demo` first")
    params = RefreshParams.from_dict({"survey": name, "heads": heads, "pseudo": pseudo})
    if every is not None:
        typer.echo(f"{name}: refreshed after every {set_refresh_every(store, name, every):,} new votes")
    if queue is not None:
        typer.echo(f"{name}: the queue puts {set_queue_strategy(store, name, queue)} first")
    if wait:
        _echo_json(refresh_job(store, ws, None, params))
    elif every is None and queue is None:
        typer.echo(f"queued job {enqueue(store, 'refresh', params, workspace=ws)}; `galaxalign worker` runs it")


@app.command()
def reembed(survey: Optional[str] = typer.Option(None, help="Registered survey (default: the first)"),
            model: Optional[str] = typer.Option(None, help="Model version (default: the active one)"),
            shards: str = typer.Option("1", help="Split over the workers: a number of shards, or auto "
                                                 "(50,000 galaxies each)"),
            workspace: Path = typer.Option(None, help="Workspace folder")):
    """Queue embedding a registered survey with a model version (predictions, index, map); with --shards,
    as shard jobs any number of `galaxalign worker` processes share (a dead worker's shard is retried)."""
    from .jobs import enqueue
    from .store import active_model, list_surveys, open_store

    if shards != "auto" and not (shards.isdigit() and int(shards) >= 1):
        raise typer.BadParameter(f"{shards!r}: a whole number of shards ≥ 1, or auto", param_hint="--shards")
    ws = _workspace(workspace)
    store = open_store(ws.database_url)
    active, surveys = active_model(store), list_surveys(store)
    mv = model or (active.name if active else None)
    row = survey or (surveys[0].name if surveys else None)
    if mv is None or row is None:
        raise GalaxalignError("nothing to embed: no registered survey or no model version (run `galaxalign demo`)")
    params = {"survey": row, "model": mv, "shards": shards if shards == "auto" else int(shards)}
    typer.echo(f"queued job {enqueue(store, 'embed', params, workspace=ws)}: {row} with {mv}, shards {shards}; "
               "`galaxalign worker` runs it")


@app.command()
def adapt(survey: str = typer.Option(..., help="The registered survey to adapt to"),
          model: Optional[str] = typer.Option(None, help="Model version (default: the active one)"),
          align: str = typer.Option("ot", help="ot (optimal transport, POT), mmd or none"),
          epochs: int = typer.Option(3, help="Passes over the target survey"),
          workspace: Path = typer.Option(None, help="Workspace folder"),
          wait: bool = typer.Option(False, help="Run here and now instead of queueing for the worker")):
    """Adapt a model to another survey; reports the domain AUC before and after (0.5: mixed)."""
    from .adapt import AdaptCfg
    from .jobs import adapt as adapt_job, enqueue
    from .store import open_store

    AdaptCfg(epochs=epochs, align=align).check()
    ws = _workspace(workspace)
    store = open_store(ws.database_url)
    params = {k: v for k, v in dict(survey=survey, model=model, align=align, epochs=epochs).items() if v is not None}
    if wait:
        _echo_json(adapt_job(store, ws, None, params, show_bar=True))
    else:
        typer.echo(f"queued job {enqueue(store, 'adapt', params, workspace=ws)}; `galaxalign worker` runs it")


@app.command()
def simulate(survey: str = typer.Option(..., help="A registered survey with the flat workflow and known truth"),
             out: Path = typer.Option(Path("campaign.json"), help="JSON of every round (a PNG plot beside it)"),
             workspace: Path = typer.Option(None, help="Workspace folder"),
             rounds: int = typer.Option(5, help="Rounds of votes, each followed by a re-training job"),
             votes_per_round: int = typer.Option(300, help="Simulated votes per round"),
             strategy: str = typer.Option("entropy", help="Queue: entropy, margin, disagreement, bald or random"),
             learn_from: str = typer.Option("consensus", help="Re-train on consensus labels, or on every vote"),
             refresh_every: int = typer.Option(0, help="Refresh the proposals every this many votes (0: never)"),
             retirement: str = typer.Option("majority", help="Retirement: majority, or skill (SWAP-style, from gold)"),
             model_votes: float = typer.Option(0.0, help="Count the active model as this many volunteers (0: off)"),
             from_scratch: bool = typer.Option(False, help="Re-train each round from the config's start, not the "
                                                           "active model"),
             anchoring: float = typer.Option(0.3, help="Chance a simulated volunteer takes a shown proposal"),
             blind_fraction: float = typer.Option(0.1, help="Share of tasks that hide the proposal (the control)"),
             config: Optional[Path] = typer.Option(None, help="Training config for the re-training jobs"),
             stage1_epochs: Optional[int] = typer.Option(None), stage2_epochs: Optional[int] = typer.Option(None),
             seed: int = typer.Option(0, help="Seed of the volunteers, their answers and the queue")):
    """Simulate a volunteer campaign through the real queue, store and re-training job; score it."""
    from .simulate import CampaignCfg, run_campaign, write_campaign
    from .store import open_store
    from .validate import check_output_file

    check_output_file(out, (".json",))
    retrain_params = {k: v for k, v in (("config", str(config) if config else None), ("stage1_epochs", stage1_epochs),
                                        ("stage2_epochs", stage2_epochs), ("from_scratch", from_scratch or None),
                                        ("learn_from", learn_from)) if v is not None}
    cfg = CampaignCfg(rounds=rounds, votes_per_round=votes_per_round, strategy=strategy, anchoring=anchoring,
                      blind_fraction=blind_fraction, seed=seed, retrain=retrain_params, refresh_every=refresh_every,
                      retirement={"method": retirement, "model_votes": model_votes}).check()
    ws = _workspace(workspace)
    res = run_campaign(open_store(ws.database_url), ws, survey, cfg)
    write_campaign(res, out)
    last, a = res["rounds"][-1], res["anchoring"]
    typer.echo(f"{last['human_votes']} votes: model accuracy {res['rounds'][0]['model_accuracy']:.3f} → "
               f"{last['model_accuracy']:.3f}, {last['retired']} retired (consensus accuracy "
               f"{last['consensus_accuracy'] or 0:.3f}); anchoring {a['anchoring'] if a['anchoring'] is not None else '–'}"
               f" → {out}")


@app.command("retirement")
def retirement_cmd(survey: str = typer.Argument(..., help="A registered survey"),
                   workspace: Path = typer.Option(None, help="Workspace folder"),
                   method: Optional[str] = typer.Option(None, help="majority, or skill (SWAP-style, from gold)"),
                   n_votes: Optional[int] = typer.Option(None, help="Retire after this many votes in any case"),
                   early_votes: Optional[int] = typer.Option(None, help="majority: retire early from this many votes"),
                   early_agreement: Optional[float] = typer.Option(None, help="majority: … when the top class has this share"),
                   skill_threshold: Optional[float] = typer.Option(None, help="skill: retire when the posterior reaches this"),
                   model_votes: Optional[float] = typer.Option(None, help="Count the active model as this many volunteers")):
    """Show or change a survey's retirement rule (for the votes to come)."""
    from .store import open_store, set_retirement

    changes = {k: v for k, v in (("method", method), ("n_votes", n_votes), ("early_votes", early_votes),
                                 ("early_agreement", early_agreement), ("skill_threshold", skill_threshold),
                                 ("model_votes", model_votes)) if v is not None}
    _echo_json(set_retirement(open_store(_workspace(workspace).database_url), survey, **changes))


@app.command("gold")
def gold_cmd(survey: str = typer.Argument(..., help="A registered survey with the Galaxy10 classes"),
             n: int = typer.Option(50, "--n", help="How many galaxies to render as gold"),
             seed: int = typer.Option(0, help="Rendering seed"),
             workspace: Path = typer.Option(None, help="Workspace folder")):
    """Inject rendered galaxies with known truth as gold into a survey's queue (a linked gold survey)."""
    from .importer import inject_gold
    from .store import open_store

    ws = _workspace(workspace)
    res = inject_gold(open_store(ws.database_url), ws, survey, n=n, seed=seed, progress=True)
    typer.echo(f"{res['galaxies']} rendered gold galaxies ({res['size']} px) in {res['gold_survey']!r}, served by "
               f"the queue of {res['survey']!r}")


user_app = typer.Typer(help="Accounts: volunteers, researchers, admins.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _password_from_terminal(name: str) -> str:
    """Ask for a password at the terminal; with no terminal, one line saying how to give it instead (no
    prompt printed into a pipe, no warning)."""
    if not sys.stdin.isatty():
        raise GalaxalignError(f"password for {name!r}: not given and no terminal to ask on; "
                              "use --password or $GALAXALIGN_PASSWORD")
    return typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)


def _accounts_store(workspace: Path | None):
    from .store import open_store

    return open_store(_workspace(workspace).database_url)


@user_app.command("add")
def user_add(name: str, role: str = typer.Option("volunteer", help="volunteer, researcher or admin"),
             workspace: Path = typer.Option(None, help="Workspace folder"),
             password: Optional[str] = typer.Option(None, envvar="GALAXALIGN_PASSWORD",
                                                    help="Password (asked for at a terminal if not given)"),
             email: Optional[str] = typer.Option(None, help="E-mail address (optional)")):
    """Create an account with a hashed password (held to the same strength rule as sign-up)."""
    from .store import add_volunteer

    store = _accounts_store(workspace)
    if password is None:
        password = _password_from_terminal(name)
    vid = add_volunteer(store, name, role, password, email=email, strength=True)
    typer.echo(f"created {role} {name!r} (id {vid})")


@user_app.command("list")
def user_list(search: Optional[str] = typer.Option(None, help="Part of the name (any case)"),
              role: Optional[str] = typer.Option(None, help="Only this role (guest, volunteer, researcher, admin)"),
              limit: int = typer.Option(100, min=1, help="At most this many, most recently active first"),
              workspace: Path = typer.Option(None, help="Workspace folder")):
    """Accounts with their activity: votes, last vote, comments, suspension."""
    from .store import list_accounts

    df = list_accounts(_accounts_store(workspace), search=search, role=role, limit=limit)
    if not len(df):
        typer.echo("no accounts match")
        return
    for r in df.itertuples():
        last = "never" if r.last_vote is None or str(r.last_vote) in ("NaT", "None") else f"{r.last_vote:%Y-%m-%d %H:%M}"
        typer.echo(f"{r.id:>6}  {r.name:<24} {r.role:<10} {int(r.votes):>6} votes  last {last:<16} "
                   f"{int(r.comments):>4} comments" + (f"  SUSPENDED: {r.reason}" if r.suspended else ""))


@user_app.command("role")
def user_role(name: str, role: str = typer.Argument(..., help="volunteer, researcher or admin"),
              workspace: Path = typer.Option(None, help="Workspace folder")):
    """Change an account's role (applies on their next request; logged)."""
    from .store import set_role

    before = set_role(_accounts_store(workspace), None, name, role)
    typer.echo(f"{name}: {before} -> {role}")


@user_app.command("suspend")
def user_suspend(name: str, reason: str = typer.Option(..., help="Why (shown to them at sign-in; logged)"),
                 workspace: Path = typer.Option(None, help="Workspace folder")):
    """Suspend an account: it can neither sign in nor vote until reinstated."""
    from .store import suspend_account

    suspend_account(_accounts_store(workspace), None, name, reason)
    typer.echo(f"{name} is suspended: {reason}")


@user_app.command("reinstate")
def user_reinstate(name: str, reason: Optional[str] = typer.Option(None, help="Why (logged)"),
                   workspace: Path = typer.Option(None, help="Workspace folder")):
    """Lift a suspension."""
    from .store import reinstate_account

    reinstate_account(_accounts_store(workspace), None, name, reason)
    typer.echo(f"{name} is reinstated")


@user_app.command("reset")
def user_reset(name: str, hours: float = typer.Option(24.0, help="How long the link works"),
               url: Optional[str] = typer.Option(None, help="The app's public address (default $GALAXALIGN_PUBLIC_URL "
                                                            "or http://localhost:8501)"),
               workspace: Path = typer.Option(None, help="Workspace folder")):
    """Print a one-time password-reset link to hand to the account's owner."""
    from .access import make_link
    from .store import create_link

    store = _accounts_store(workspace)
    typer.echo(make_link(store, create_link(store, None, "reset", name, hours=hours), "reset", url))


@user_app.command("invite")
def user_invite(role: str = typer.Option("volunteer", help="The role joining with it grants"),
                hours: float = typer.Option(24.0 * 7, help="How long the link works"),
                url: Optional[str] = typer.Option(None, help="The app's public address"),
                workspace: Path = typer.Option(None, help="Workspace folder")):
    """Print a one-time invitation link (for an invite-only project)."""
    from .access import make_link
    from .store import create_link

    store = _accounts_store(workspace)
    typer.echo(make_link(store, create_link(store, None, "invite", role=role, hours=hours), "invite", url))


@user_app.command("delete")
def user_delete(name: str, yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation"),
                workspace: Path = typer.Option(None, help="Workspace folder")):
    """Erase an account on request: name, e-mail, password and comment authorship go; the votes stay,
    anonymised, so consensus and exports do not change."""
    from .store import erase_account, get_volunteer

    store = _accounts_store(workspace)
    v = get_volunteer(store, name)  # NotFound before anything is asked
    if not yes:
        if not sys.stdin.isatty():
            raise GalaxalignError(f"delete {v.name!r}: confirm with --yes (no terminal to ask on)")
        typer.confirm(f"erase {v.name!r}'s personal data? Their votes stay, anonymised", abort=True)
    placeholder = erase_account(store, None, v.id)
    typer.echo(f"erased {v.name!r}: their votes stay under {placeholder!r}")


@app.command()
def project(join: Optional[str] = typer.Option(None, help="Who may join: open, invite or closed"),
            guests: Optional[bool] = typer.Option(None, "--guests/--no-guests", help="Visitors may classify as guests"),
            guest_votes: Optional[str] = typer.Option(None, help="Guest votes: count, or store (counted once they join)"),
            title: Optional[str] = typer.Option(None, help="The project's title"),
            home: Optional[Path] = typer.Option(None, help="A Markdown file: the home page's text"),
            workspace: Path = typer.Option(None, help="Workspace folder")):
    """Show or change the project's settings (the doors, the home page); changes are logged."""
    from dataclasses import asdict

    from .store import project_settings, set_project_settings

    store = _accounts_store(workspace)
    changes = {k: v for k, v in dict(join=join, guests=guests, guest_votes=guest_votes, title=title).items()
               if v is not None}
    if home is not None:
        changes["home_text"] = home.read_text(encoding="utf-8")
    cfg = set_project_settings(store, None, **changes) if changes else project_settings(store)
    for k, v in asdict(cfg).items():
        typer.echo(f"{k:<24} {'(default)' if v is None else (v[:60] + '…' if isinstance(v, str) and len(v) > 60 else v)}")


@app.command()
def export(out: Path = typer.Argument(..., help="File to write: .csv or .parquet"),
           what: str = typer.Option("classifications", help="classifications (Zooniverse layout), fractions, "
                                                             "flags (favourites and odd flags) or comments (Talk)"),
           survey: str = typer.Option("demo", help="Survey name"),
           workspace: Path = typer.Option(None, help="Workspace folder"),
           weighted: bool = typer.Option(False, help="Skill-weighted vote fractions")):
    """Export classifications, per-galaxy vote fractions, the volunteers' flags or their Talk comments."""
    from .store import (StoreError, export_classifications, export_comments, export_flags, export_vote_fractions,
                        open_store, write_table)
    from .validate import check_output_file

    exports = {"classifications": export_classifications, "flags": export_flags, "comments": export_comments,
               "fractions": lambda st, sv: export_vote_fractions(st, sv, weighted)}
    if what not in exports:
        raise typer.BadParameter(f"--what must be one of {', '.join(exports)}, got {what!r}")
    check_output_file(out, (".csv", ".parquet"), StoreError)  # before any query: nothing half-made
    store = open_store(_workspace(workspace).database_url)
    df = exports[what](store, survey)
    write_table(df, out)
    typer.echo(f"wrote {len(df)} rows to {out}")


@app.command("train")
def train_cmd(config: Path = typer.Option(..., help="Training config YAML (configs/tiny-cpu.yaml)"),
              survey: Path = typer.Option(..., help="Survey to train on"),
              out: Path = typer.Option(..., help="Run folder to write"),
              variant: Optional[str] = typer.Option(None, help="Override the config's variant"),
              seed: Optional[int] = typer.Option(None, help="Override the config's seed"),
              split: Optional[str] = typer.Option(None, help="auto (the survey's own split if any), fixed or random"),
              labelset: Optional[str] = typer.Option(None, help="Label-set YAML file (or built-in name) for the classes"),
              prepare: str = typer.Option("auto", help="auto (detected from the data), none, or a preparation JSON file"),
              resume: bool = typer.Option(False, help="Continue from OUT/last.pt")):
    """Two-stage GalaxAlign fine-tuning; writes config.yaml, metrics.jsonl and model.pt to OUT."""
    from .train import load_config, train

    cfg = load_config(config, variant=variant, seed=seed, split=split)
    s = _open_prepared(survey, labelset, prepare)
    result = train(cfg, survey=s, out_dir=out, resume=resume)
    m = result.get("metrics") or {}
    if m:
        f4 = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731  (retrieval needs two galaxies per class)
        typer.echo(f"trained in {result['seconds']:.0f} s: accuracy {f4(m['accuracy'])}  macro-F1 {f4(m['macro_f1'])}  "
                   f"mAP@5 {f4(m.get('map_at_5'))}  mAP {f4(m.get('map'))}  → {out}")


def _open_prepared(path: Path, labelset: Optional[str], prepare: str, model_meta: dict | None = None):
    """A survey from disk with a preparation: ``auto`` (a model's own preparation when there is one,
    else detected and printed), ``none`` (raw pixels, linearly scaled when not 8-bit RGB) or a JSON file."""
    from .data import load_survey
    from .prepare import Preparation, detect_for_survey

    s = load_survey(path, label_set=labelset)
    if prepare == "auto":
        if model_meta and model_meta.get("preparation"):
            prep = Preparation.from_dict(model_meta["preparation"])
            typer.echo(f"preparation (the model's): {prep.describe()}", err=True)
        else:
            prep, reasons = detect_for_survey(s)
            typer.echo(f"preparation (detected): {prep.describe()}", err=True)
            for r in reasons:
                typer.echo(f"  - {r}", err=True)
    elif prepare == "none":
        prep = None
    else:
        p = Path(prepare)
        try:
            prep = Preparation.from_dict(p.read_text())
        except FileNotFoundError:
            raise GalaxalignError(f"{p}: no such preparation file") from None
    return s.with_preparation(prep)


@app.command("eval")
def eval_cmd(model: Path = typer.Option(..., help="Run folder or model.pt"),
             survey: Path = typer.Option(..., help="Survey"),
             split: str = typer.Option("test", help="test (or valid): the model's held-out split; all: every labelled galaxy"),
             labelset: Optional[str] = typer.Option(None, help="Label-set YAML file (or built-in name)"),
             prepare: str = typer.Option("auto", help="auto (the model's own preparation), none, or a JSON file"),
             confusion: bool = typer.Option(False, help="Include the confusion matrix")):
    """Evaluate: prints JSON with accuracy, macro_f1, map_at_5, map (and symbol / fused prototypes)."""
    from .inference import evaluate_model
    from .model import load_model
    from .train import TrainCfg, resolve_split

    if split not in ("test", "valid", "all"):
        raise typer.BadParameter("split must be test, valid or all")
    m = load_model(model)
    s = _open_prepared(survey, labelset, prepare, m.checkpoint_meta)
    idx = None
    if split != "all":
        tc = m.checkpoint_meta.get("train_cfg") or {}
        cfg = TrainCfg(test_size=tc.get("test_size", 0.2), split_seed=tc.get("split_seed", 0),
                       split=tc.get("split", "auto"))
        _, va, te = resolve_split(s, cfg)
        idx = te if split == "test" else va
    res = evaluate_model(m, s, idx)
    if not confusion:
        res.pop("confusion")
    _echo_json(res)


@app.command()
def embed(model: Path = typer.Option(..., help="Run folder or model.pt"),
          survey: Path = typer.Option(..., help="Survey"),
          out: Path = typer.Option(..., help="Folder for embeddings.npy and predictions.parquet"),
          batch_size: int = typer.Option(256),
          labelset: Optional[str] = typer.Option(None, help="Label-set YAML file (or built-in name)"),
          prepare: str = typer.Option("auto", help="auto (the model's own preparation), none, or a JSON file"),
          precision: str = typer.Option("fp32", help="fp32, bf16 (autocast), or auto (bf16 where it is native)")):
    """Embed and classify a whole survey, through the same preparation the model was trained with."""
    from .inference import PRECISIONS, embed_survey
    from .model import load_model

    if precision not in PRECISIONS:
        raise typer.BadParameter(f"{precision!r}: not one of {', '.join(PRECISIONS)}", param_hint="--precision")
    m = load_model(model)
    stats = embed_survey(m, _open_prepared(survey, labelset, prepare, m.checkpoint_meta), out, batch_size,
                         precision=precision)
    typer.echo(f"embedded {stats['n']} galaxies ({stats['dim']}-d) in {stats['seconds']:.1f} s: "
               f"{stats['images_per_second']:.0f} images/s → {out}")


def _preparation_from_options(base, cutout, size, stretch, clip_low, clip_high, bands, centre):
    """Options given on the command line override ``base`` (the detected or default preparation)."""
    from .prepare import Preparation

    changes = {"cutout": cutout, "size": size, "stretch": stretch, "centre": centre}
    if clip_low is not None or clip_high is not None:
        lo, hi = base.clip
        changes["clip"] = (lo if clip_low is None else clip_low, hi if clip_high is None else clip_high)
    if bands:
        try:
            changes["bands"] = tuple(int(b) for b in bands.split(","))
        except ValueError:
            raise GalaxalignError(f"--bands {bands!r} must be comma-separated band indices, like 2,1,0") from None
    d = {**base.to_dict(), **{k: v for k, v in changes.items() if v is not None}}
    if cutout == 0:
        d["cutout"] = None
    return Preparation.from_dict(d)


# the preparation options `prepare` and `import` share (typer reads these defaults; they are not mutated)
_PREP_HELP = "Preparation (overrides what is detected)"
_CUTOUT = typer.Option(None, help=f"{_PREP_HELP}: cut-out side in raw pixels (0: whole image)")
_SIZE = typer.Option(None, help=f"{_PREP_HELP}: output side in pixels")
_STRETCH = typer.Option(None, help=f"{_PREP_HELP}: none, linear, sqrt, log, asinh, lupton")
_CLIP_LOW = typer.Option(None, help=f"{_PREP_HELP}: low clipping percentile")
_CLIP_HIGH = typer.Option(None, help=f"{_PREP_HELP}: high clipping percentile")
_BANDS = typer.Option(None, help=f"{_PREP_HELP}: raw bands for R,G,B, e.g. 2,1,0")
_CENTRE = typer.Option(None, help=f"{_PREP_HELP}: image or catalog (x, y columns)")


@app.command("prepare")
def prepare_cmd(survey: Path = typer.Argument(..., help="A survey on disk (any format `info` reads)"),
                preview: Optional[Path] = typer.Option(None, help="Write a before/after contact sheet (PNG) here"),
                n: int = typer.Option(8, "--n", help="Galaxies on the contact sheet"),
                save: Optional[Path] = typer.Option(None, help="Write the preparation as JSON here"),
                labelset: Optional[str] = typer.Option(None, help="Label-set YAML file (or built-in name)"),
                cutout: Optional[int] = _CUTOUT, size: Optional[int] = _SIZE, stretch: Optional[str] = _STRETCH,
                clip_low: Optional[float] = _CLIP_LOW, clip_high: Optional[float] = _CLIP_HIGH,
                bands: Optional[str] = _BANDS, centre: Optional[str] = _CENTRE):
    """Detect a survey's image preparation, say why, and preview it before anything is trained."""
    import numpy as np

    from .data import load_survey
    from .fsutil import atomic_path
    from .prepare import detect_for_survey, preview_sheet

    s = load_survey(survey, label_set=labelset)
    detected, reasons = detect_for_survey(s)
    prep = _preparation_from_options(detected, cutout, size, stretch, clip_low, clip_high, bands, centre)
    s = s.with_preparation(prep)
    typer.echo(f"{survey}: {len(s)} galaxies, raw {'×'.join(map(str, s.raw_shape))}")
    typer.echo(f"preparation: {prep.describe()}")
    for r in reasons:
        typer.echo(f"  - {r}")
    if prep != detected:
        typer.echo("  (options given on the command line replace the detected settings)")
    if save:
        with atomic_path(save) as tmp:
            tmp.write_text(json.dumps(prep.to_dict(), indent=2) + "\n")
        typer.echo(f"wrote {save}")
    if preview:
        rng = np.random.default_rng(0)
        labelled = np.flatnonzero(s.labels >= 0)
        pool = labelled if len(labelled) else np.arange(len(s))
        if len(labelled) and len(s.class_names):  # a spread over the classes
            per = [rng.permutation(np.flatnonzero(s.labels == c)) for c in range(len(s.class_names))]
            order = [p[i] for i in range(max(map(len, per))) for p in per if i < len(p)]
            idx = np.array(order[:n])
        else:
            idx = np.sort(rng.choice(pool, min(n, len(pool)), replace=False))
        names = [s.class_names[k] if k >= 0 else s.id_str[i] for i, k in zip(idx, s.labels[idx])]
        sheet = preview_sheet(s.raw_images(idx), prep, names, centres=s.centres(idx))
        with atomic_path(preview) as tmp:
            sheet.save(tmp, format="PNG")
        typer.echo(f"wrote the before/after preview to {preview}")


@app.command("import")
def import_cmd(path: Path = typer.Argument(..., help="Survey on disk: .h5, folder with catalog.csv, FITS folder, FIRST zip"),
               name: str = typer.Option(..., help="Name of the survey in the workspace"),
               workflow: str = typer.Option("flat", help="gz2 (the decision tree; needs a label set with it) or flat"),
               labelset: Optional[str] = typer.Option(None, help="Label-set YAML file (or built-in name)"),
               config: Optional[Path] = typer.Option(None, help="Training config re-training uses for this survey"),
               workspace: Path = typer.Option(None, help="Workspace folder"),
               cutout: Optional[int] = _CUTOUT, size: Optional[int] = _SIZE, stretch: Optional[str] = _STRETCH,
               clip_low: Optional[float] = _CLIP_LOW, clip_high: Optional[float] = _CLIP_HIGH,
               bands: Optional[str] = _BANDS, centre: Optional[str] = _CENTRE):
    """Register a survey from disk: validated, streamed into the workspace, with its preparation."""
    from .data import load_survey
    from .importer import import_path
    from .prepare import detect_for_survey
    from .store import open_store

    if config is not None and not config.is_file():
        raise GalaxalignError(f"{config}: no such training config")
    ws = _workspace(workspace).create()
    survey = load_survey(path, label_set=labelset)  # read once: detection and the import share it
    detected, reasons = detect_for_survey(survey)
    prep = _preparation_from_options(detected, cutout, size, stretch, clip_low, clip_high, bands, centre)
    store = open_store(ws.database_url)
    try:
        res = import_path(store, ws, path, name, workflow=workflow, label_set=labelset, preparation=prep,
                          train_config=str(config.resolve()) if config else None, survey=survey)
    finally:
        store.dispose()
    typer.echo(f"registered survey {name!r} (id {res['survey_id']}): {res['galaxies']} galaxies → {res['path']}")
    typer.echo(f"preparation: {res['preparation_text']}")
    for r in reasons if prep == detected else []:
        typer.echo(f"  - {r}")


@app.command("import-field")
def import_field_cmd(images: list[Path] = typer.Argument(..., help="The field: FITS files (one per band, or one "
                                                                   "cube; with a WCS) or one PNG/JPEG/TIFF"),
                     name: str = typer.Option(..., help="Name of the survey in the workspace"),
                     preview: Optional[Path] = typer.Option(None, help="Also draw the field with its detections "
                                                                       "and cut-out boxes into this PNG"),
                     size: int = typer.Option(64, help="Cut-out size in pixels"),
                     stars: bool = typer.Option(False, help="Keep the sources taken for stars too"),
                     mask_neighbours: bool = typer.Option(False, help="Blank other sources inside each cut-out"),
                     threshold: Optional[float] = typer.Option(None, help="Detection threshold × the background "
                                                                          "rms (default: from the data)"),
                     min_pixels: int = typer.Option(30, help="Cut out galaxies of at least this many pixels "
                                                             "above the threshold"),
                     workspace: Path = typer.Option(None, help="Workspace folder")):
    """Find the galaxies of a telescope field, cut them out and register them as a survey (GZ2 workflow)."""
    from .importer import import_field
    from .store import open_store

    if not 16 <= size <= 512:
        raise typer.BadParameter(f"{size}: a cut-out size from 16 to 512 pixels", param_hint="--size")
    ws = _workspace(workspace).create()
    store = open_store(ws.database_url)
    try:
        res = import_field(store, ws, images, name, size=size, include_stars=stars, mask_neighbours=mask_neighbours,
                           threshold=threshold, preview=preview, min_pixels=min_pixels)
    finally:
        store.dispose()
    f = res["field"]
    typer.echo(f"{f['sources']} sources in the {f['shape'][1]}×{f['shape'][0]}-px field: {f['galaxies']} galaxies, "
               f"{f['stars']} stars; {f['cut_out']} cut out" + (" (RA/Dec from the WCS)" if f["wcs"] else " (no WCS)"))
    for r in f["reasons"]:
        typer.echo(f"  - {r}")
    typer.echo(f"registered survey {name!r} (id {res['survey_id']}): {res['galaxies']} galaxies → {res['path']}")
    typer.echo(f"catalogue: {f['catalog']}" + (f"; preview: {f['preview']}" if f["preview"] else ""))


labelset_app = typer.Typer(help="Label-set files: classes with prompts, help and symbols.", no_args_is_help=True)
app.add_typer(labelset_app, name="labelset")


@labelset_app.command("check")
def labelset_check(file: Path = typer.Argument(..., help="Label-set YAML file"),
                   trimodal: bool = typer.Option(True, help="Also check what a tri-modal run needs (own symbols, distinct prompts)")):
    """Validate a label-set file; prints its classes."""
    from .taxonomy import load_label_set

    ls = load_label_set(file)
    if trimodal:
        from .model import ModelCfg, create_model

        ls.check_trimodal(create_model(ModelCfg()).tokenize)
    typer.echo(f"{file}: label set {ls.name!r} ({ls.title}), {len(ls)} classes"
               + (", GZ2 tree" if ls.tree else ", flat"))
    for c in ls:
        sym = Path(c.symbol).name if c.symbol.lower().endswith(".png") else c.symbol
        typer.echo(f"  {c.index}  {c.name:<24} symbol {sym:<28} “{c.prompt}”")


@app.command("pretrain")
def pretrain_cmd(out: Path = typer.Option(..., help="Checkpoint to write (open_clip layout, fp16) with a .card.json"),
                 config: Optional[Path] = typer.Option(None, help="Pretraining YAML (configs/pretrain-cpu.yaml)"),
                 survey: list[Path] = typer.Option([], help="An unlabelled survey to add to the pool (repeatable)"),
                 epochs: Optional[int] = typer.Option(None, help="Override the config's epochs"),
                 n_synthetic: Optional[int] = typer.Option(None, help="Diverse-sky galaxies rendered for the pool"),
                 seed: Optional[int] = typer.Option(None, help="Override the config's seed"),
                 minutes: Optional[float] = typer.Option(None, help="Train for this long instead of a number of epochs"),
                 workdir: Optional[Path] = typer.Option(None, help="Where the rendered pool is kept (default: beside OUT)")):
    """Self-supervised (SimCLR) pretraining of the image tower on unlabelled galaxies."""
    import shlex

    from .pretrain import PretrainCfg, pretrain
    from .train import read_settings
    from .validate import check_output_file

    check_output_file(out)

    raw = read_settings(config, missing="no such pretraining config") if config is not None else {}
    for k, v in (("epochs", epochs), ("n_synthetic", n_synthetic), ("seed", seed), ("minutes", minutes)):
        if v is not None:
            raw[k] = v
    if survey:
        from .data import first_package_dir

        # "first": the FIRST radio galaxies inside the firstgalaxydata package
        raw["surveys"] = [str(first_package_dir() / "galaxy_data_h5.zip") if str(p) == "first" else str(p)
                          for p in survey]
    cfg = PretrainCfg.from_dict(raw)
    res = pretrain(cfg, out, workdir, command="galaxalign " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    typer.echo(f"pretrained on {res['n_images']} galaxies, {res['steps']} steps in {res['seconds']:.0f} s on {res['device']} "
               f"(SimCLR loss {res['loss_per_epoch'][0]:.3f} → {res['loss_per_epoch'][-1]:.3f}) → {out}")


def _click_flavours():
    """click itself and the copy typer ≥ 0.20 bundles (``typer._click``): their exceptions are different
    classes, and a usage error comes from whichever one parsed the command line."""
    errors, usage = [click.exceptions.ClickException], [click.exceptions.UsageError]
    aborts = [click.exceptions.Abort, typer.Abort]
    try:
        from typer._click import exceptions as vendored
        errors.append(vendored.ClickException)
        usage.append(vendored.UsageError)
        aborts += [getattr(vendored, "Abort", typer.Abort)]
    except ImportError:
        pass
    return tuple(errors), tuple(usage), tuple(aborts)


_CLICK_ERRORS, _USAGE_ERRORS, _ABORTS = _click_flavours()


MAX_ERROR_CHARS = 300


def _fail(message: str) -> None:
    """Print ``error: <message>`` as one line (cut in the middle when long) and exit with status 2."""
    line = " ".join(str(message).split()) or "unknown error"
    if len(line) > MAX_ERROR_CHARS:
        half = MAX_ERROR_CHARS // 2 - 2
        line = f"{line[:half]} … {line[-half:]}"
    typer.echo(f"error: {line}", err=True)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the typer app, turning user errors into one line and exit status 2. Expected
    warnings (PIL, astropy, NumPy on a bad file) are silenced: the error line reports the problem."""
    import warnings

    debug = bool(os.environ.get("GALAXALIGN_DEBUG"))
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.simplefilter("ignore")
            app(args=argv, standalone_mode=False)
    except GalaxalignError as e:
        if debug:
            raise
        _fail(str(e))
    except OSError as e:  # a path that cannot be read or written: missing, a file where a folder is needed…
        if debug:
            raise
        _fail(os_error_message(e))
    except ValueError as e:  # argument values the package rejects (sizes, counts…)
        if debug:
            raise
        _fail(str(e).splitlines()[0] if str(e) else e.__class__.__name__)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except _CLICK_ERRORS as e:  # usage errors (typer's bundled click included): one line, exit status 2
        hint = " (galaxalign --help lists the commands and options)" if isinstance(e, _USAGE_ERRORS) else ""
        _fail(e.format_message() + hint)
    except _ABORTS:
        _fail("aborted (no answer to a prompt: no terminal, or Ctrl-C)")


if __name__ == "__main__":
    main()
