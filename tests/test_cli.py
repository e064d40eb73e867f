import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_galaxy10


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "galaxalign", *args], capture_output=True, text=True, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=300)


def here(*args):
    """``galaxalign ARGS`` run in this process through the same entry point (``cli.main``): the exit
    status and the two streams, as ``run`` gives them, without paying the CLI's start-up per command (the
    tests above and below that need a fresh process still use ``run``)."""
    import contextlib
    import io

    from galaxalign.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(["galaxalign", *args], code, out.getvalue(), err.getvalue())


def test_synth_then_info(tmp_path):
    r = run("synth", "--n", "20", "--size", "32", "--seed", "7", "--out", str(tmp_path / "x.h5"))
    assert r.returncode == 0, r.stderr
    assert "galaxies/s" in r.stdout
    r = run("info", str(tmp_path / "x.h5"), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["galaxies"] == 20 and info["image_shape"] == [32, 32, 3] and info["label_set"] == "galaxy10"
    assert sum(info["classes"].values()) == 20
    r = run("info", str(tmp_path / "x.h5"))
    assert "20 galaxies, images 32×32×3" in r.stdout and "Barred Spiral" in r.stdout


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("hello"), "not an HDF5 file"),
    (lambda p: write_galaxy10(p, ans=np.full(12, 42, "uint8")), "label 42 at index 0 is out of range"),
    (lambda p: None, "no such file"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, make, message):
    p = tmp_path / "bad.h5"
    make(p)
    r = run("info", str(p))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0] and str(p) in lines[0]
    assert "Traceback" not in r.stderr


def test_bad_synth_arguments_are_one_line(tmp_path):
    r = run("synth", "--n", "0", "--out", str(tmp_path / "x.h5"))
    assert r.returncode == 2 and r.stderr.strip() == "error: a survey needs at least one galaxy, got n=0"


def test_symbols_command_writes_all_pngs(tmp_path):
    r = run("symbols", "--out", str(tmp_path), "--size", "32")
    assert r.returncode == 0, r.stderr
    assert len(list(tmp_path.rglob("*.png"))) == 55


def test_user_add_and_export_commands(tmp_path, synth_h5):
    import pandas as pd

    from galaxalign.data import load_survey
    from galaxalign.store import open_store, record_classification, post_comment, register_survey, set_flag
    from galaxalign.workspace import Workspace

    ws = Workspace(tmp_path / "ws").create()
    store = open_store(ws.database_url)
    register_survey(store, load_survey(synth_h5), "demo")
    store.dispose()
    r = here("user", "add", "ada", "--role", "admin", "--password", "lovelace-1843", "--workspace", str(ws.root))
    assert r.returncode == 0 and "created admin 'ada'" in r.stdout, r.stderr
    r = here("user", "add", "ada", "--password", "lovelace-1843", "--workspace", str(ws.root))
    assert r.returncode == 2 and r.stderr.strip() == "error: volunteer 'ada' already exists"
    r = here("user", "add", "bob", "--role", "emperor", "--password", "lovelace-1843", "--workspace", str(ws.root))
    assert r.returncode == 2 and "role 'emperor'" in r.stderr
    store = open_store(ws.database_url)
    record_classification(store, "ada", load_survey(synth_h5).id_str[0],
                          [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]])
    store.dispose()
    r = here("export", str(tmp_path / "c.csv"), "--workspace", str(ws.root))
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / "c.csv")) == 1
    r = here("export", str(tmp_path / "f.parquet"), "--what", "fractions", "--workspace", str(ws.root))
    assert r.returncode == 0 and pd.read_parquet(tmp_path / "f.parquet")["frac_Round Smooth"].tolist() == [1.0]
    r = here("export", str(tmp_path / "f.xlsx"), "--workspace", str(ws.root))
    assert r.returncode == 2 and "csv or .parquet" in r.stderr
    # the retirement rule: shown, changed, and a bad value refused in one line with nothing changed
    r = here("retirement", "demo", "--method", "skill", "--model-votes", "2", "--workspace", str(ws.root))
    assert r.returncode == 0 and json.loads(r.stdout)["method"] == "skill", r.stderr
    r = here("retirement", "demo", "--method", "vote", "--workspace", str(ws.root))
    assert r.returncode == 2 and r.stderr.strip() == ("error: retirement method 'vote' must be one of majority, "
                                                      "skill")
    store = open_store(ws.database_url)
    set_flag(store, "ada", load_survey(synth_h5).id_str[1], "odd", reason="ring")
    store.dispose()
    r = here("export", str(tmp_path / "flags.csv"), "--what", "flags", "--workspace", str(ws.root))
    assert r.returncode == 0, r.stderr
    flags = pd.read_csv(tmp_path / "flags.csv")
    assert list(zip(flags.volunteer, flags.kind, flags.reason)) == [("ada", "odd", "ring")]
    store = open_store(ws.database_url)
    post_comment(store, "ada", load_survey(synth_h5).id_str[1], "=HYPERLINK(\"https://evil.example\") #ring")
    store.dispose()
    r = here("export", str(tmp_path / "talk.csv"), "--what", "comments", "--workspace", str(ws.root))
    talk = pd.read_csv(tmp_path / "talk.csv")
    assert r.returncode == 0 and list(zip(talk.volunteer, talk.tags)) == [("ada", "ring")], r.stderr
    assert talk.body[0].startswith("'=HYPERLINK") and talk.created_at.notna().all()  # no formula in a spreadsheet
    r = here("reembed", "--shards", "0", "--workspace", str(ws.root))
    assert r.returncode == 2 and "'0': a whole number of shards ≥ 1, or auto" in r.stderr
    r = here("reembed", "--shards", "auto", "--workspace", str(ws.root))  # this workspace has no model yet
    assert r.returncode == 2 and r.stderr.strip() == ("error: nothing to embed: no registered survey or no model "
                                                      "version (run `galaxalign demo`)")
    r = here("gold", "nosuch", "--workspace", str(ws.root))
    assert r.returncode == 2 and r.stderr.strip() == "error: survey 'nosuch' is not registered"
    r = here("retirement", "demo", "--workspace", str(ws.root))
    assert json.loads(r.stdout)["model_votes"] == 2.0 and json.loads(r.stdout)["method"] == "skill"


@pytest.mark.parametrize("args", [["info"], ["synth", "--n", "abc", "--out", "x.h5"], ["nosuch"],
                                  ["info", "--bogus", "x"], ["export", "x.csv", "--what", "bogus"]])
def test_usage_errors_are_one_line_with_status_2_never_a_traceback(args, tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "galaxalign", *args], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr


def test_a_password_prompt_without_a_terminal_is_an_error_not_a_traceback(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "galaxalign", "user", "add", "bob", "--role", "admin", "--workspace",
                        str(tmp_path / "ws")], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "no terminal" in r.stderr
    # one line and nothing else: no prompt written into the pipe, no warning before the error
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_an_output_path_under_a_regular_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = run("synth", "--n", "2", "--out", str(tmp_path / "afile" / "x.h5"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "afile" in r.stderr


def test_user_commands_manage_accounts_and_log_each_action(tmp_path):
    from galaxalign.store import authenticate, moderation_log, open_store
    from galaxalign.workspace import Workspace

    ws = Workspace(tmp_path / "ws").create()
    w = ["--workspace", str(ws.root)]
    assert here("user", "add", "Ada", "--role", "admin", "--password", "lovelace-analytical-1843", *w).returncode == 0
    assert here("user", "add", "bob", "--password", "babbage-difference-engine", "--email", "bob@example.org",
               *w).returncode == 0
    r = here("user", "add", "ＡＤＡ", "--password", "lovelace-analytical-1843", *w)
    assert r.returncode == 2 and "already exists (as 'Ada')" in r.stderr
    r = here("user", "add", "carol", "--password", "password1", *w)
    assert r.returncode == 2 and r.stderr.startswith("error: password: too weak")
    r = here("user", "list", *w)
    assert r.returncode == 0 and "bob" in r.stdout and "Ada" in r.stdout
    assert here("user", "role", "bob", "researcher", *w).stdout.strip() == "bob: volunteer -> researcher"
    r = here("user", "role", "Ada", "volunteer", *w)
    assert r.returncode == 2 and "last admin" in r.stderr
    assert here("user", "suspend", "bob", "--reason", "testing", *w).returncode == 0
    assert "SUSPENDED: testing" in here("user", "list", "--search", "BO", *w).stdout
    assert here("user", "reinstate", "bob", *w).returncode == 0
    link = here("user", "reset", "bob", "--url", "http://127.0.0.1:9999", *w).stdout.strip()
    assert link.startswith("http://127.0.0.1:9999/?reset=")
    r = here("user", "delete", "bob", *w)
    assert r.returncode == 2 and "--yes" in r.stderr  # no terminal to confirm on: nothing erased
    r = here("user", "delete", "bob", "--yes", *w)
    assert r.returncode == 0 and "erased 'bob'" in r.stdout
    r = here("user", "delete", "nobody", "--yes", *w)
    assert r.returncode == 2 and r.stderr.strip() == "error: volunteer 'nobody' does not exist"
    r = here("project", "--join", "ajar", *w)
    assert r.returncode == 2 and "join mode 'ajar'" in r.stderr
    assert "invite" in here("project", "--join", "invite", *w).stdout
    store = open_store(ws.database_url)
    actions = list(moderation_log(store).action)
    assert {"role", "suspend-acct", "reinstate", "reset-link", "erase", "settings"} <= set(actions)
    assert authenticate(store, "ada", "lovelace-analytical-1843") is not None
    store.dispose()


def test_an_import_of_a_zip_whose_member_fails_its_crc_is_one_line(tmp_path, synth_h5):
    import zipfile

    good = tmp_path / "survey.zip"
    with zipfile.ZipFile(good, "w", compression=zipfile.ZIP_STORED) as z:
        z.write(synth_h5, "survey.h5")
    raw = bytearray(good.read_bytes())
    at = raw.index(b"HDF") + 200  # inside the stored member: the data no longer matches its CRC-32
    raw[at] ^= 0xFF
    bad = tmp_path / "damaged.zip"
    bad.write_bytes(bytes(raw))
    r = here("import", bad, "--name", "broken", "--workspace", tmp_path / "ws")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "BadZipFile" not in r.stderr, r.stderr
    assert "damaged.zip" in r.stderr and "damaged zip file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
