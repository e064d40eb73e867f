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


@app.command()
def demo(workspace: Path = typer.Option(None, help="Workspace folder (default $GALAXALIGN_WORKSPACE or ./workspace)"),
         n: int = typer.Option(None, "--n", help="Galaxies in the demo survey")):
    """Build the embedded demo workspace if it is missing (synthetic survey)."""
    from .workspace import DEMO_SURVEY_N, Workspace, default_workspace

    ws = Workspace(workspace) if workspace else default_workspace()
    stats = ws.ensure_demo_survey(n=n or DEMO_SURVEY_N)
    if stats is None:
        typer.echo(f"demo survey present: {ws.demo_survey}")
    else:
        typer.echo(f"rendered demo survey {ws.demo_survey}: {stats['n']} galaxies, "
                   f"{stats['galaxies_per_second']:.1f} galaxies/s")


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
    except __import__("click").exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except __import__("click").exceptions.Abort:
        sys.exit(1)


if __name__ == "__main__":
    main()
