"""The layers hold (import-linter's contracts in .importlinter), the heavy stacks stay apart, and what
docs/architecture.md names exists."""
from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True) == 0


def test_a_sideways_import_breaks_a_contract(tmp_path):
    """The contracts are not vacuous: a copy of the package whose store reaches into the model fails them."""
    shutil.copytree(ROOT / "galaxalign", tmp_path / "galaxalign", ignore=shutil.ignore_patterns("__pycache__"))
    votes = tmp_path / "galaxalign" / "store" / "votes.py"
    votes.write_text(votes.read_text() + "\n\ndef _peek():\n    from ..model import load_model  # noqa\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename=sys.argv[2], no_cache=True))")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(ROOT / ".importlinter")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "galaxalign.store.votes -> galaxalign.model" in run.stdout


@pytest.mark.parametrize("module, absent", [
    ("galaxalign.store", ("torch", "galsim", "faiss", "open_clip", "galaxalign.model", "galaxalign.synth")),
    ("galaxalign.train", ("sqlalchemy", "alembic", "galaxalign.store")),
    ("galaxalign.taxonomy", ("torch", "sqlalchemy", "galsim")),  # the domain loads neither stack
])
def test_importing_one_side_does_not_load_the_other(module, absent):
    code = f"import sys, {module}; print(','.join(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"import {module} loaded {out.stdout.strip()}"


def _named_in_architecture_doc() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    names = set(re.findall(r"`(galaxalign(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\(\))?`", text))
    return sorted(names)


def test_the_architecture_doc_names_only_what_exists():
    names = _named_in_architecture_doc()
    assert len(names) >= 40, "docs/architecture.md should name the modules and functions it walks through"
    missing = []
    for name in names:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert not missing, f"docs/architecture.md names what is not in the code: {missing}"


def test_the_docs_site_builds_strictly_with_the_api_reference(tmp_path):
    """`mkdocs build --strict`: a broken link, a missing page or an API name that moved fails the build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    store_page = (tmp_path / "site" / "reference" / "store" / "index.html").read_text()
    assert "record_classification" in store_page and "next_galaxy_for" in store_page
    assert "RetrainParams" in (tmp_path / "site" / "reference" / "jobs" / "index.html").read_text()
    assert "Benchmarks" in (tmp_path / "site" / "benchmarks" / "index.html").read_text()


def test_the_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    targets = re.findall(r"\]\((?!https?://|#)([^)#\s]+)", text)
    assert targets, "the README points to the docs"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to what is not there: {missing}"
