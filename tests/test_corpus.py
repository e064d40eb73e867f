"""The bad-input corpus: broken and hostile inputs against the CLI, the loaders, the importer and the store
API. Every case must end in one line naming the thing and the problem (exit status 2 on the command
line), leave no file or row behind, and keep what was stored before intact. Counts are in the README.
"""
from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import func, select

from conftest import GZ2_ROUND, write_galaxy10
from galaxalign.errors import GalaxalignError

# --- helpers ------------------------------------------------------------------------------------------


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def cli(argv, capsys) -> tuple[int, str, str]:
    """Run the command line in this process (fast: torch is already imported); (status, stdout, stderr)."""
    from galaxalign.cli import main

    code = 0
    try:
        main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str, expect: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert expect.lower() in lines[0].lower(), (expect, lines[0])
    assert len(lines[0]) < 400, "a long value is echoed whole"


def _text(p: Path, s: str) -> Path:
    p.write_text(s)
    return p


def _bytes(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def _png(p: Path, size=(8, 8)) -> Path:
    Image.new("RGB", size).save(p)
    return p


def _folder(root: Path, catalog: dict, images: dict | None = None) -> Path:
    root.mkdir(exist_ok=True)
    for name, size in (images or {"a.png": (8, 8)}).items():
        _png(root / name, size)
    pd.DataFrame(catalog).to_csv(root / "catalog.csv", index=False)
    return root


def _h5(path: Path, **members) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in members.items():
            if isinstance(v, str) and v == "group":
                f.create_group(k)
            else:
                f[k] = v
    return path


def _g10_attr(path: Path, value: str) -> Path:
    write_galaxy10(path)
    with h5py.File(path, "a") as f:
        f.attrs["class_names"] = value
    return path


def _truncated(path: Path) -> Path:
    whole = write_galaxy10(path.with_name("whole.h5"))
    path.write_bytes(whole.read_bytes()[:2000])
    whole.unlink()
    return path


def _zip(path: Path, entries: dict) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            if isinstance(data, zipfile.ZipInfo):
                z.writestr(data, name.encode())
            else:
                z.writestr(name, data)
    return path


def _symlink_dir_zip(path: Path) -> Path:
    """A zip whose entry is a symbolic link to a directory (what `zip -y` writes for a linked folder)."""
    info = zipfile.ZipInfo("images")
    info.external_attr = (0o120777 << 16)  # S_IFLNK
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(info, "/etc")
        z.writestr("catalog.csv", "id_str,file_loc\na,images/passwd\n")
    return path


def _fits(path: Path, data) -> Path:
    from astropy.io import fits

    fits.PrimaryHDU(np.asarray(data, np.float32)).writeto(path)
    return path


def _fits_folder(root: Path, data) -> Path:
    root.mkdir()
    _fits(root / "a.fits", data)
    pd.DataFrame({"id_str": ["a"], "file_loc": ["a.fits"]}).to_csv(root / "catalog.csv", index=False)
    return root


def _big_png(p: Path) -> Path:
    """A 20000×20000 image, written small: a PNG header with a huge size (decoding it would take 1.2 GB)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return p


# --- surveys on disk: loaders (info, import and prepare read through the same code) --------------------

SURVEY_CASES = {
    "text file as .h5": (lambda t: _text(t / "x.h5", "hello"), "not an HDF5 file"),
    "empty .h5": (lambda t: _text(t / "x.h5", ""), "empty"),
    "missing path": (lambda t: t / "missing.h5", "no such file"),
    "truncated .h5": (lambda t: _truncated(t / "x.h5"), "x.h5"),
    "images is a group": (lambda t: _h5(t / "x.h5", images="group", ans=np.zeros(3, np.uint8)), "'images'"),
    "labels is a group": (lambda t: _h5(t / "x.h5", images=np.zeros((3, 8, 8, 3), np.uint8), ans="group"), "'ans'"),
    "images 2-D": (lambda t: write_galaxy10(t / "x.h5", images=np.zeros((12, 16), np.uint8)), "shape"),
    "images bool": (lambda t: write_galaxy10(t / "x.h5", images=np.zeros((12, 16, 16, 3), np.bool_)), "dtype bool"),
    "label out of range": (lambda t: write_galaxy10(t / "x.h5", ans=np.full(12, 42, np.uint8)), "label 42"),
    "labels too few": (lambda t: write_galaxy10(t / "x.h5", ans=np.zeros(5, np.uint8)), "'ans' has shape"),
    "class_names JSON not a list": (lambda t: _g10_attr(t / "x.h5", '{"a": 1}'), "class_names"),
    "class_names not JSON": (lambda t: _g10_attr(t / "x.h5", "[Bent, FRI"), "class_names"),
    "class_names with a number": (lambda t: _g10_attr(t / "x.h5", "[1, 2]"), "class_names"),
    "folder without catalog": (lambda t: (t / "d").mkdir() or t / "d", "catalog"),
    "catalog lacks columns": (lambda t: _folder(t / "d", {"name": ["a"]}), "lacks column"),
    "catalog empty": (lambda t: _folder(t / "d", {"id_str": [], "file_loc": []}), "empty"),
    "catalog duplicate id": (lambda t: _folder(t / "d", {"id_str": ["a", "a"], "file_loc": ["a.png", "a.png"]}),
                             "more than once"),
    "file_loc escapes": (lambda t: _folder(t / "d", {"id_str": ["a"], "file_loc": ["../../etc/passwd"]}),
                         "outside the survey folder"),
    "file_loc absolute": (lambda t: _folder(t / "d", {"id_str": ["a"], "file_loc": ["/etc/passwd"]}),
                          "outside the survey folder"),
    "file_loc missing": (lambda t: _folder(t / "d", {"id_str": ["a"], "file_loc": ["nope.png"]}), "nope.png"),
    "image not decodable": (lambda t: (_folder(t / "d", {"id_str": ["a"], "file_loc": ["a.png"]}),
                                       _bytes(t / "d" / "a.png", b"\x89PNG\r\n\x1a\n junk"))[0],
                            "unreadable image"),
    "image 20000 px": (lambda t: (_folder(t / "d", {"id_str": ["a"], "file_loc": ["big.png"]}, {}),
                                  _big_png(t / "d" / "big.png"))[0], "pixels"),
    "integer label with a hole": (lambda t: _folder(t / "d", {"id_str": ["a", "b"], "file_loc": ["a.png", "a.png"],
                                                              "label": [0, 42]}), "row"),
    "all-NaN FITS": (lambda t: _fits_folder(t / "d", np.full((3, 8, 8), np.nan)), "no finite pixel"),
    "FITS with no image": (lambda t: _fits_folder(t / "d", np.zeros(5)), "a.fits"),
    "zip not a zip": (lambda t: _bytes(t / "x.zip", b"PK\x03\x04garbage"), "not a valid zip"),
    "zip of something else": (lambda t: _zip(t / "x.zip", {"notes.txt": "x"}), "no FIRST images"),
    "unknown kind of file": (lambda t: _text(t / "x.exe", "MZ"), "x.exe"),
}


@pytest.mark.parametrize("case", list(SURVEY_CASES))
def test_bad_survey_files_are_one_line_in_info_and_import(case, tmp_path, capsys):
    make, expect = SURVEY_CASES[case]
    src = tmp_path / "src"
    src.mkdir()
    path = make(src)
    before = tree(src)
    code, _, err = cli(["info", path], capsys)
    assert code == 2
    one_line_error(err, expect)
    ws = tmp_path / "ws"
    code, _, err = cli(["import", path, "--name", "bad", "--workspace", ws], capsys)
    assert code == 2
    one_line_error(err, expect)
    assert tree(src) == before, "the source was changed"
    imported = ws / "surveys" / "imported"
    assert not imported.exists() or not any(imported.iterdir()), "a refused import left files behind"
    if (ws / "store.db").exists():
        from galaxalign.store import list_surveys, open_store

        st = open_store(f"sqlite:///{ws / 'store.db'}")
        assert list_surveys(st) == []
        st.dispose()


# --- the command line's own arguments -------------------------------------------------------------------

def _g10(t):
    return write_galaxy10(t / "g.h5", size=32)


CLI_CASES = {
    "no path": (lambda t: ["info"], "missing argument"),
    "not a number": (lambda t: ["synth", "--n", "abc", "--out", t / "x.h5"], "valid integer"),
    "unknown command": (lambda t: ["nosuchcmd"], "no such command"),
    "unknown option": (lambda t: ["info", "--bogus", "x"], "no such option"),
    "export --what bogus": (lambda t: ["export", t / "x.csv", "--what", "bogus"], "bogus"),
    "export as .xlsx": (lambda t: ["export", t / "x.xlsx", "--workspace", t / "ws"], ".csv or .parquet"),
    "export to a folder": (lambda t: (t / "d.csv").mkdir() or ["export", t / "d.csv", "--workspace", t / "ws"],
                           "d.csv"),
    "export under a file": (lambda t: _text(t / "f", "x") and ["export", t / "f" / "x.csv", "--workspace", t / "ws"],
                            "f"),
    "synth n=0": (lambda t: ["synth", "--n", "0", "--out", t / "x.h5"], "at least one galaxy"),
    "synth size negative": (lambda t: ["synth", "--n", "2", "--size", "-4", "--out", t / "x.h5"], "size"),
    "synth bad sky": (lambda t: ["synth", "--n", "2", "--sky", "bogus", "--out", t / "x.h5"], "--sky"),
    "synth bad hold": (lambda t: ["synth", "--n", "2", "--hold", "bogus", "--out", t / "x.h5"], "--hold"),
    "synth under a file": (lambda t: _text(t / "f", "x") and ["synth", "--n", "2", "--out", t / "f" / "x.h5"], "f"),
    "train config missing": (lambda t: ["train", "--config", t / "no.yaml", "--survey", _g10(t), "--out", t / "r"],
                             "no.yaml"),
    "train config malformed": (lambda t: ["train", "--config", _text(t / "c.yaml", "a: [1"), "--survey", _g10(t),
                                          "--out", t / "r"], "c.yaml"),
    "train config unknown key": (lambda t: ["train", "--config", _text(t / "c.yaml", "learning_rat: 1\n"),
                                            "--survey", _g10(t), "--out", t / "r"], "learning_rat"),
    "train config bad value": (lambda t: ["train", "--config", _text(t / "c.yaml", "batch_size: -3\n"),
                                          "--survey", _g10(t), "--out", t / "r"], "batch_size"),
    "labelset malformed": (lambda t: ["labelset", "check", _text(t / "l.yaml", "name: [x")], "l.yaml"),
    "labelset missing png": (lambda t: ["labelset", "check", _text(t / "l.yaml", (
        "name: radio\nclasses:\n- {name: A, prompt: a point source, symbol: a.png}\n"
        "- {name: B, prompt: two lobes far apart, symbol: b.png}\n"))], "a.png"),
    "labelset duplicate class": (lambda t: ["labelset", "check", _text(t / "l.yaml", (
        "name: radio\nclasses:\n- {name: A, prompt: a point source, glyph: round}\n"
        "- {name: A, prompt: two lobes, glyph: cigar}\n"))], "A"),
    "prepare cut-out larger than the image": (lambda t: ["prepare", _g10(t), "--cutout", "999"], "999"),
    "prepare bad stretch": (lambda t: ["prepare", _g10(t), "--stretch", "bogus"], "bogus"),
    "prepare bad clip": (lambda t: ["prepare", _g10(t), "--clip-low", "90", "--clip-high", "10"], "clip"),
    "import bad name": (lambda t: ["import", _g10(t), "--name", "../etc", "--workspace", t / "ws"], "../etc"),
    "import name with newline": (lambda t: ["import", _g10(t), "--name", "base2\n", "--workspace", t / "ws"],
                                 "base2"),
    "import unreadable path": (lambda t: ["import", t / "nothing-here", "--name", "x1", "--workspace", t / "ws"],
                               "nothing-here"),
    "user bad role": (lambda t: ["user", "add", "bob", "--role", "emperor", "--password", "pw-123456",
                                 "--workspace", t / "ws"], "emperor"),
    "user name with newline": (lambda t: ["user", "add", "bob\n", "--password", "pw-123456", "--workspace", t / "ws"],
                               "bob"),
    "user name 100 kB": (lambda t: ["user", "add", "x" * 100_000, "--password", "pw-123456", "--workspace", t / "ws"],
                         "xxxx"),
    "simulate bad strategy": (lambda t: ["simulate", "--survey", "demo", "--strategy", "best", "--out", t / "c.json",
                                         "--workspace", t / "ws"], "strategy 'best'"),
    "simulate output not JSON": (lambda t: ["simulate", "--survey", "demo", "--out", t / "c.txt", "--workspace",
                                            t / "ws"], ".json"),
    "pretrain unknown survey": (lambda t: ["pretrain", "--out", t / "p.pt", "--survey", "bogus", "--epochs", "1"],
                                "bogus"),
    "eval missing model": (lambda t: ["eval", "--model", t / "nomodel", "--survey", _g10(t)], "nomodel"),
    "embed model not a checkpoint": (lambda t: ["embed", "--model", _text(t / "m.pt", "junk"), "--survey", _g10(t),
                                                "--out", t / "e.parquet"], "m.pt"),
    "embed bad precision": (lambda t: ["embed", "--model", t / "m.pt", "--survey", _g10(t), "--out", t / "e",
                                       "--precision", "int4"], "'int4': not one of fp32, bf16, auto"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_command_lines_are_one_line_with_status_2(case, tmp_path, capsys):
    make, expect = CLI_CASES[case]
    argv = make(tmp_path)
    before = tree(tmp_path)
    code, _, err = cli(argv, capsys)
    assert code == 2, err
    one_line_error(err, expect)
    left = {p for p in tree(tmp_path) - before if not p.startswith("ws")}
    assert not left, f"left behind: {left}"
    assert not [p for p in tree(tmp_path) if ".tmp" in p], "a temporary file was left behind"


def test_usage_errors_and_warnings_in_a_fresh_process_are_one_line(tmp_path):
    """The real entry point, with real stderr: no usage block, no warning printed before the error."""
    import subprocess
    import sys

    _fits_folder(tmp_path / "d", np.full((3, 8, 8), np.nan))
    for args, expect in ((["synth", "--n", "abc", "--out", "x.h5"], "valid integer"),
                         (["info", str(tmp_path / "d")], "no finite pixel")):
        r = subprocess.run([sys.executable, "-m", "galaxalign", *args], capture_output=True, text=True, timeout=300,
                           cwd=tmp_path)
        assert r.returncode == 2
        one_line_error(r.stderr, expect)


# --- the store API -------------------------------------------------------------------------------------

@pytest.fixture
def voted(store, synth_h5):
    from galaxalign.data import load_survey
    from galaxalign.store import add_volunteer, record_classification, register_survey

    survey = load_survey(synth_h5)
    register_survey(store, survey, "demo", gold_fraction=0.0)
    register_survey(store, survey.with_preparation(None), "flat", workflow="flat", known_fraction=0.0,
                    gold_fraction=0.0)
    add_volunteer(store, "ada", "volunteer", "password-1")
    add_volunteer(store, "bob", "volunteer", "password-2")
    record_classification(store, "bob", survey.id_str[0], GZ2_ROUND, survey="demo")
    return store, survey


def _rows(store):
    from galaxalign.store.models import Classification, Galaxy, Volunteer

    with store.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Classification, Volunteer)) + (
            s.scalar(select(func.sum(Galaxy.n_votes))),)


def _vote(**kw):
    def go(store, survey):
        from galaxalign.store import record_classification

        args = dict(volunteer="ada", galaxy=survey.id_str[1], answers=GZ2_ROUND, survey="demo")
        args.update(kw)
        return record_classification(store, **args)
    return go


def _flat_vote(k):
    def go(store, survey):
        from galaxalign.store import record_classification

        return record_classification(store, "ada", survey.id_str[1], [["FLAT", k]], survey="flat")
    return go


def _other_survey_vote(store, survey):
    from galaxalign.store import get_galaxy, record_classification

    return record_classification(store, "ada", get_galaxy(store, survey.id_str[2], "flat").id, [["FLAT", 0]],
                                 survey="demo")


def _add(name, role="volunteer", password="password-x"):
    def go(store, survey):
        from galaxalign.store import add_volunteer

        return add_volunteer(store, name, role, password)
    return go


def _register(name):
    def go(store, survey):
        from galaxalign.store import register_survey

        return register_survey(store, survey, name)
    return go


def _proposal_gate(**kw):
    def go(store, survey):
        from galaxalign.store import set_proposal_gate

        return set_proposal_gate(store, **kw)
    return go


STORE_CASES = {
    "answers None": (_vote(answers=None), "answer"),
    "answers an int": (_vote(answers=5), "answer"),
    "answers a string": (_vote(answers="t01_smooth"), "answer"),
    "answers path not in the tree": (_vote(answers=[["T01", "t99_nothing"]]), "answer"),
    "seconds a string": (_vote(seconds="abc"), "seconds"),
    "seconds negative": (_vote(seconds=-1.0), "seconds"),
    "seconds NaN": (_vote(seconds=float("nan")), "seconds"),
    "seconds infinite": (_vote(seconds=math.inf), "seconds"),
    "proposal class a string": (_vote(proposal=("x", 0.5)), "proposal"),
    "proposal class out of range": (_vote(proposal=(99, 0.5)), "proposal class 99"),
    "proposal class negative": (_vote(proposal=(-1, 0.5)), "proposal class -1"),
    "proposal confidence NaN": (_vote(proposal=(2, float("nan"))), "confidence"),
    "proposal confidence above 1": (_vote(proposal=(2, 7.5)), "confidence"),
    "proposal of one element": (_vote(proposal=(2,)), "proposal"),
    "proposal a string": (_vote(proposal="2"), "proposal"),
    "model version a string": (_vote(model_version_id="v1"), "model"),
    "model version unknown": (_vote(model_version_id=12345), "12345"),
    "unknown volunteer": (_vote(volunteer="nobody"), "nobody"),
    "volunteer id a float": (_vote(volunteer=1.5), "volunteer"),
    "unknown galaxy": (_vote(galaxy="no-such-galaxy"), "no-such-galaxy"),
    "galaxy id None": (_vote(galaxy=None), "galaxy"),
    "galaxy of another survey": (_other_survey_vote, "another survey"),
    "unknown survey": (_vote(survey="nowhere"), "nowhere"),
    "duplicate vote": (_vote(volunteer="bob", galaxy=None) if False else
                       (lambda st, sv: _vote(volunteer="bob", galaxy=sv.id_str[0])(st, sv)), "already classified"),
    "flat class out of range": (_flat_vote(10), "out of range"),
    "flat class a bool": (_flat_vote(True), "out of range"),
    "volunteer name with newline": (_add("eve\n"), "control"),
    "volunteer name differs by case": (_add("ADA"), "already exists"),
    "volunteer name 10 MB": (_add("x" * 10_000_000), "at most 40"),
    "volunteer bad role": (_add("eve", role="emperor"), "emperor"),
    "volunteer short password": (_add("eve", password="x"), "password"),
    "survey name with newline": (_register("demo2\n"), "2–40"),
    "survey name differs by case": (_register("DEMO"), "already registered"),
    "proposal gate floor above 1": (_proposal_gate(model="nope", confidence_floor=2.0), "confidence"),
}


@pytest.mark.parametrize("case", list(STORE_CASES))
def test_bad_store_calls_are_one_line_and_write_nothing(case, voted):
    store, survey = voted
    act, expect = STORE_CASES[case]
    before = _rows(store)
    with pytest.raises(GalaxalignError) as err:
        act(store, survey)
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 400, msg[:500]
    assert expect.lower() in msg.lower(), (expect, msg)
    assert _rows(store) == before


# --- properties: whatever arrives, a vote is stored valid or refused cleanly ------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

anything = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                     st.text(max_size=30), st.lists(st.integers(-3, 99), max_size=3),
                     st.tuples(st.integers(-3, 99), st.floats(allow_nan=True, allow_infinity=True)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=anything, proposal=anything, flat_class=anything)
def test_any_vote_arguments_are_stored_valid_or_refused(tmp_path_factory, synth_h5, seconds, proposal, flat_class):
    from galaxalign.data import load_survey
    from galaxalign.store import (add_volunteer, get_galaxy, open_store, record_classification, register_survey)

    st_ = _hypothesis_store(tmp_path_factory, synth_h5)
    survey = load_survey(synth_h5)
    name = f"v{abs(hash((repr(seconds), repr(proposal), repr(flat_class)))) % 10**9}"
    try:
        add_volunteer(st_, name, "volunteer", "password-1")
    except GalaxalignError:
        return  # the same example drawn twice
    before = _rows(st_)
    try:
        res = record_classification(st_, name, survey.id_str[3], [["FLAT", flat_class]], seconds=seconds,
                                    proposal=proposal, survey="flat")
    except GalaxalignError as e:
        assert "\n" not in str(e)
        assert _rows(st_) == before
        return
    # accepted: then every value is one the store can stand behind
    g = get_galaxy(st_, survey.id_str[3], "flat")
    assert isinstance(flat_class, int) and not isinstance(flat_class, bool) and 0 <= flat_class < 10
    assert seconds is None or (isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                               and math.isfinite(seconds) and seconds >= 0)
    if proposal is not None:
        k, c = proposal
        assert 0 <= k < 10 and 0 <= c <= 1
    assert res.resolved_class == flat_class and g.n_votes >= 1


_HSTORE = {}


def _hypothesis_store(tmp_path_factory, synth_h5):
    from galaxalign.data import load_survey
    from galaxalign.store import open_store, register_survey

    if "s" not in _HSTORE:
        url = f"sqlite:///{tmp_path_factory.mktemp('hyp') / 'store.db'}"
        st_ = open_store(url)
        register_survey(st_, load_survey(synth_h5), "flat", workflow="flat", known_fraction=0.0, gold_fraction=0.0)
        _HSTORE["s"] = st_
    return _HSTORE["s"]


@settings(max_examples=80, deadline=None)
@given(name=st.text(min_size=0, max_size=60))
def test_names_are_accepted_only_whole_and_plain(name):
    from galaxalign.validate import NAME_RE, InvalidValue, check_name

    try:
        out = check_name(name)
    except InvalidValue as e:
        assert "\n" not in str(e) and len(str(e)) < 400
        assert not NAME_RE.fullmatch(name)
    else:
        assert out == name and NAME_RE.fullmatch(name) and "\n" not in name


def test_corpus_size():
    """The issue asked for at least 60 cases; keep the count honest as cases are added."""
    n = len(SURVEY_CASES) + len(CLI_CASES) + len(STORE_CASES) + len(UPLOAD_CASES)
    assert n >= 60, n


# --- uploads through the Admin page's importer (bytes, not a path) ----------------------------------------

def _zip_bytes(build) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        build(z)
    return buf.getvalue()


def _symlinked_dir(z):
    info = zipfile.ZipInfo("images")
    info.external_attr = 0o120777 << 16  # S_IFLNK: `zip -y` of a linked folder
    z.writestr(info, "/etc")
    z.writestr("catalog.csv", "id_str,file_loc\na,images/passwd\n")


def _file_and_folder(z):
    z.writestr("catalog.csv", "id_str,file_loc\na,a/b.png\n")
    z.writestr("a", "x")
    z.writestr("a/b.png", "x")


UPLOAD_CASES = {
    "zip slip": ("x.zip", lambda: _zip_bytes(lambda z: z.writestr("../../escape.txt", "x")), "outside"),
    "absolute entry": ("x.zip", lambda: _zip_bytes(lambda z: z.writestr("/tmp/abs.txt", "x")), "outside"),
    "symlinked folder": ("x.zip", lambda: _zip_bytes(_symlinked_dir), "symbolic link"),
    "a file and a folder of one name": ("x.zip", lambda: _zip_bytes(_file_and_folder), "x.zip"),
    "not a zip": ("x.zip", lambda: b"PK\x03\x04garbage", "not a valid zip"),
    "executable": ("x.exe", lambda: b"MZ", "upload an .h5"),
    "text as .h5": ("x.h5", lambda: b"hello", "not an HDF5 file"),
    "20000-px image in a zip": ("x.zip", lambda: _zip_bytes(lambda z: (
        z.writestr("catalog.csv", "id_str,file_loc\na,big.png\n"),
        z.writestr("big.png", _big_png_bytes()))), "pixels"),
}


def _big_png_bytes() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return _big_png(Path(d) / "b.png").read_bytes()


@pytest.mark.parametrize("case", list(UPLOAD_CASES))
def test_bad_uploads_are_one_line_and_leave_nothing(case, tmp_path):
    from galaxalign.importer import import_survey
    from galaxalign.store import list_surveys, open_store
    from galaxalign.workspace import Workspace

    fname, data, expect = UPLOAD_CASES[case]
    ws = Workspace(tmp_path / "ws").create()
    st_ = open_store(ws.database_url)
    with pytest.raises(GalaxalignError) as err:
        import_survey(st_, ws, fname, data(), "up1")
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 400 and expect.lower() in msg.lower(), msg
    assert list_surveys(st_) == []
    uploads = ws.surveys / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir()), "the staged upload was left behind"
    imported = ws.surveys / "imported"
    assert not imported.exists() or not any(imported.iterdir())
    assert not (tmp_path / "escape.txt").exists() and not Path("/tmp/abs.txt").exists()
    st_.dispose()
