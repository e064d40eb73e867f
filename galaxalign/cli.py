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

from .errors import GalaxalignError

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
          workers: Optional[int] = typer.Option(None, help="Processes (default: all cores)")):
    """Render a synthetic Galaxy10 DECaLS survey with GalSim."""
    from .synth import synth_survey

    stats = synth_survey(out, n=n, size=size, seed=seed, workers=workers)
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
    typer.echo(f"{s['galaxies']} galaxies, images {h}×{w}×{c} uint8")
    width = max((len(k) for k in s["classes"]), default=0)
    for name, count in s["classes"].items():
        typer.echo(f"  {name:<{width}}  {count:>7}  {count / s['galaxies']:6.1%}")


def _workspace(path: Optional[Path]):
    from .workspace import Workspace, default_workspace

    return Workspace(path) if path else default_workspace()


@app.command()
def demo(workspace: Path = typer.Option(None, help="Workspace folder (default $GALAXALIGN_WORKSPACE or ./workspace)"),
         n: int = typer.Option(None, "--n", help="Galaxies in the demo survey"),
         train: bool = typer.Option(True, help="Also register the survey, create the admin and train the starter model")):
    """Build the embedded demo workspace: synthetic survey, store, admin account, starter model."""
    from .jobs import bootstrap
    from .workspace import DEMO_SURVEY_N

    ws = _workspace(workspace)
    if not train:
        stats = ws.ensure_demo_survey(n=n or DEMO_SURVEY_N)
        typer.echo(f"demo survey: {ws.demo_survey}" + (f" ({stats['galaxies_per_second']:.1f} galaxies/s)" if stats else ""))
        return
    if not ws.demo_survey.exists():
        typer.echo(f"rendering the demo survey into {ws.demo_survey} …")
    out = bootstrap(ws, n=n)
    if "starter" in out:
        m = out["starter"]["metrics"]
        typer.echo(f"starter model trained in {out['starter']['seconds']:.0f} s: accuracy {m['accuracy']:.3f}, "
                   f"macro-F1 {m['macro_f1']:.3f}, mAP {m['map']:.3f}")
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
    reaped = reap_stale_jobs(store)
    store.dispose()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if reaped:
        logging.getLogger("galaxalign").warning("marked stale job(s) %s as failed", reaped)
    huey = get_huey(str(ws.root))
    typer.echo(f"worker: queue {'redis' if os.environ.get('GALAXALIGN_REDIS_URL') else ws.root / 'huey.db'}, "
               f"store {ws.database_url}", err=True)
    huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()


@app.command()
def retrain(workspace: Path = typer.Option(None, help="Workspace folder"),
            survey: Optional[str] = typer.Option(None, help="Survey name (default: the first)"),
            stage1_epochs: Optional[int] = typer.Option(None), stage2_epochs: Optional[int] = typer.Option(None),
            force_activate: bool = typer.Option(False, help="Activate even if worse than the active model"),
            from_scratch: bool = typer.Option(False, help="Do not start from the active model"),
            wait: bool = typer.Option(False, help="Run here and now instead of queueing for the worker")):
    """Queue a re-training job (or run it here with --wait)."""
    from .jobs import enqueue, retrain as retrain_job
    from .store import open_store

    ws = _workspace(workspace)
    store = open_store(ws.database_url)
    params = {k: v for k, v in dict(survey=survey, stage1_epochs=stage1_epochs, stage2_epochs=stage2_epochs,
                                    force_activate=force_activate, from_scratch=from_scratch).items() if v}
    if wait:
        _echo_json(retrain_job(store, ws, None, params, show_bar=True))
    else:
        typer.echo(f"queued job {enqueue(store, 'retrain', params, workspace=ws)}; `galaxalign worker` runs it")


user_app = typer.Typer(help="Accounts: volunteers, researchers, admins.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(name: str, role: str = typer.Option("volunteer", help="volunteer, researcher or admin"),
             workspace: Path = typer.Option(None, help="Workspace folder"),
             password: Optional[str] = typer.Option(None, help="Password (asked for if not given)")):
    """Create an account with a hashed password."""
    from .store import add_volunteer, open_store

    if password is None:
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    vid = add_volunteer(open_store(_workspace(workspace).database_url), name, role, password)
    typer.echo(f"created {role} {name!r} (id {vid})")


@app.command()
def export(out: Path = typer.Argument(..., help="File to write: .csv or .parquet"),
           what: str = typer.Option("classifications", help="classifications (Zooniverse layout) or fractions"),
           survey: str = typer.Option("demo", help="Survey name"),
           workspace: Path = typer.Option(None, help="Workspace folder"),
           weighted: bool = typer.Option(False, help="Skill-weighted vote fractions")):
    """Export classifications or per-galaxy vote fractions."""
    from .store import export_classifications, export_vote_fractions, open_store, write_table

    store = open_store(_workspace(workspace).database_url)
    if what == "classifications":
        df = export_classifications(store, survey)
    elif what == "fractions":
        df = export_vote_fractions(store, survey, weighted)
    else:
        raise typer.BadParameter("what must be classifications or fractions")
    write_table(df, out)
    typer.echo(f"wrote {len(df)} rows to {out}")


@app.command("train")
def train_cmd(config: Path = typer.Option(..., help="Training config YAML (configs/tiny-cpu.yaml)"),
              survey: Path = typer.Option(..., help="Survey to train on"),
              out: Path = typer.Option(..., help="Run folder to write"),
              variant: Optional[str] = typer.Option(None, help="Override the config's variant"),
              seed: Optional[int] = typer.Option(None, help="Override the config's seed"),
              resume: bool = typer.Option(False, help="Continue from OUT/last.pt")):
    """Two-stage GalaxAlign fine-tuning; writes config.yaml, metrics.jsonl and model.pt to OUT."""
    from .train import load_config, train

    cfg = load_config(config, variant=variant, seed=seed)
    result = train(cfg, survey, out, resume=resume)
    m = result.get("metrics") or {}
    if m:
        typer.echo(f"trained in {result['seconds']:.0f} s: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
                   f"mAP@5 {m['map_at_5']:.4f}  mAP {m['map']:.4f}  → {out}")


@app.command("eval")
def eval_cmd(model: Path = typer.Option(..., help="Run folder or model.pt"),
             survey: Path = typer.Option(..., help="Survey"),
             split: str = typer.Option("test", help="test: the model's held-out split; all: every labelled galaxy"),
             confusion: bool = typer.Option(False, help="Include the confusion matrix")):
    """Evaluate: prints JSON with accuracy, macro_f1, map_at_5, map (and symbol / fused prototypes)."""
    from .data import load_survey, stratified_split
    from .inference import evaluate_model
    from .model import load_model

    m = load_model(model)
    s = load_survey(survey)
    idx = None
    if split == "test":
        tc = m.checkpoint_meta.get("train_cfg") or {}
        _, idx = stratified_split(s.labels, tc.get("test_size", 0.2), tc.get("split_seed", 0))
    elif split != "all":
        raise typer.BadParameter("split must be test or all")
    res = evaluate_model(m, s, idx)
    if not confusion:
        res.pop("confusion")
    _echo_json(res)


@app.command()
def embed(model: Path = typer.Option(..., help="Run folder or model.pt"),
          survey: Path = typer.Option(..., help="Survey"),
          out: Path = typer.Option(..., help="Folder for embeddings.npy and predictions.parquet"),
          batch_size: int = typer.Option(256)):
    """Embed and classify a whole survey."""
    from .data import load_survey
    from .inference import embed_survey
    from .model import load_model

    stats = embed_survey(load_model(model), load_survey(survey), out, batch_size)
    typer.echo(f"embedded {stats['n']} galaxies ({stats['dim']}-d) in {stats['seconds']:.1f} s: "
               f"{stats['images_per_second']:.0f} images/s → {out}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the typer app, turning user errors into one line and exit status 2."""
    try:
        app(args=argv, standalone_mode=False)
    except GalaxalignError as e:
        if os.environ.get("GALAXALIGN_DEBUG"):
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        if os.environ.get("GALAXALIGN_DEBUG"):
            raise
        typer.echo(f"error: {e.filename}: {e.strerror}", err=True)
        sys.exit(2)
    except ValueError as e:  # argument values the package rejects (sizes, counts…)
        if os.environ.get("GALAXALIGN_DEBUG"):
            raise
        typer.echo(f"error: {str(e).splitlines()[0] if str(e) else e.__class__.__name__}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)


if __name__ == "__main__":
    main()
