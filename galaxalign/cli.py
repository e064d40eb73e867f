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
