"""FIRST radio galaxies: the loaders for the firstgalaxydata package's own files (on small files in its
format that the tests write), the fixed split, import, and the embedded demo."""
from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

from galaxalign.data import SurveyError, load_survey
from galaxalign.taxonomy import FIRST

SPLITS = ["train"] * 12 + ["valid"] * 4 + ["test"] * 4


def radio_image(rng, label: int, size: int = 300) -> np.ndarray:
    """A sparse, clipped 8-bit radio map: a compact core, or lobes along a random axis."""
    img = np.zeros((size, size), np.float32)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    ang = rng.uniform(0, np.pi)
    ux, uy = np.cos(ang), np.sin(ang)
    blobs = {0: [(0, 1.0, 3), (8, 0.6, 4), (-8, 0.6, 4)], 1: [(0, 0.2, 2), (20, 1.0, 3), (-20, 1.0, 3)],
             2: [(0, 1.0, 2)], 3: [(0, 1.0, 3), (12, 0.6, 4), (-12, 0.6, 4)]}[label]
    for d, amp, w in blobs:
        cx, cy = d * ux, d * uy + (8 if label == 3 and d else 0)
        img += amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * w ** 2))
    img[img < 0.05] = 0
    return (255 * img / img.max()).astype(np.uint8)


def write_first_h5(target, n: int = 20, seed: int = 0) -> None:
    """The package's galaxy_data_h5.h5 layout: data_<k>/{Img, Label_literature, Split_literature}."""
    rng = np.random.default_rng(seed)
    with h5py.File(target, "w") as f:
        for k in range(n):
            label = k % 4
            g = f.create_group(f"data_{k}")
            ds = g.create_dataset("Img", data=radio_image(rng, label))
            ds.attrs["RA"], ds.attrs["DEC"] = 100.0 + k, 10.0 + k / 10
            ds.attrs["Source"] = "MiraBest"
            ds.attrs["Filepath_literature"] = f"{FIRST[label].name}/{100 + k:.3f}_{10 + k / 10:.3f}_{label}_MiraBest.png"
            g["Label_literature"] = float(label)
            g["Split_literature"] = SPLITS[k % len(SPLITS)].encode()
            g["Label_CDL1"] = float(label)
            g["Split_CDL1"] = b"train"


@pytest.fixture(scope="module")
def first_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("first")
    h5 = root / "galaxy_data_h5.h5"
    write_first_h5(h5)
    with zipfile.ZipFile(root / "galaxy_data_h5.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(h5, "galaxy_data_h5.h5")
    rng = np.random.default_rng(1)
    with zipfile.ZipFile(root / "galaxy_data.zip", "w") as z:
        for k in range(8):
            label, split = k % 4, ("train", "test")[k // 4]
            buf = io.BytesIO()
            Image.fromarray(radio_image(rng, label)).save(buf, format="PNG")
            for top in (split, "all"):  # the package ships every image again under all/
                z.writestr(f"galaxy_data/{top}/{FIRST[label].name}/{150 + k:.3f}_{20 + k:.3f}_{label}_Gendre.png",
                           buf.getvalue())
    return root


def test_first_hdf5_loader_keeps_labels_positions_sources_and_split(first_files):
    s = load_survey(first_files / "galaxy_data_h5.h5")
    assert s.kind == "first" and len(s) == 20 and s.raw_shape == (300, 300)
    assert s.label_set is FIRST and s.class_names == ["FRI", "FRII", "Compact", "Bent"]
    assert s.labels.tolist() == [k % 4 for k in range(20)]
    assert s.catalog["ra"].iloc[3] == 103.0 and s.catalog["source"].iloc[0] == "MiraBest"
    assert s.id_str[2] == "FIRST-102.000_10.200_2_MiraBest"
    assert s.has_split and s.split_indices("valid").tolist() == [12, 13, 14, 15]
    assert s.split_indices("test").tolist() == [16, 17, 18, 19]
    # grey 8-bit maps are not display-ready: a default linear preparation makes RGB
    assert s.images([0]).shape == (1, 300, 300, 3)


def test_first_hdf5_zip_reads_the_same_survey_without_unpacking(first_files):
    a = load_survey(first_files / "galaxy_data_h5.h5")
    b = load_survey(first_files / "galaxy_data_h5.zip")
    assert b.id_str.tolist() == a.id_str.tolist()
    assert np.array_equal(b.raw_images([0, 7]), a.raw_images([0, 7]))
    assert not list(first_files.glob("*.h5.tmp*"))


def test_first_png_zip_loader_reads_split_and_class_folders_and_skips_all(first_files):
    s = load_survey(first_files / "galaxy_data.zip")
    assert len(s) == 8  # not 16: the all/ copies are skipped
    assert sorted(set(s.catalog["split"])) == ["test", "train"]
    assert s.class_counts() == {"FRI": 2, "FRII": 2, "Compact": 2, "Bent": 2}
    assert s.catalog["ra"].min() == 150.0 and s.catalog["source"].iloc[0] == "Gendre"


def test_a_broken_first_file_names_the_group(tmp_path):
    p = tmp_path / "broken.h5"
    with h5py.File(p, "w") as f:
        f.create_group("data_0").create_dataset("Img", data=np.zeros((30, 30), np.uint8))
    with pytest.raises(SurveyError, match="data_0.*lacks Img or Label_literature"):
        load_survey(p)


def test_fixed_split_is_honoured_by_training_and_random_ignores_it(first_files, tmp_path):
    from galaxalign.train import ConfigError, Trainer, TrainCfg, resolve_split

    s = load_survey(first_files / "galaxy_data_h5.h5")
    tr, va, te = resolve_split(s, TrainCfg())
    assert tr.tolist() == list(range(12)) and va.tolist() == [12, 13, 14, 15] and te.tolist() == [16, 17, 18, 19]
    trainer = Trainer(TrainCfg(batch_size=4), s, tmp_path / "run", show_bar=False)
    assert trainer.train_idx.tolist() == list(range(12))
    assert trainer.valid_idx.tolist() == [12, 13, 14, 15] and trainer.test_idx.tolist() == [16, 17, 18, 19]
    tr_r, va_r, te_r = resolve_split(s, TrainCfg(split="random"))
    assert len(va_r) == 0 and len(te_r) == 4 and set(te_r) != {16, 17, 18, 19} | set()
    g10 = load_survey(_galaxy10(tmp_path))
    with pytest.raises(ConfigError, match="no split column"):
        resolve_split(g10, TrainCfg(split="fixed"))


def _galaxy10(tmp_path):
    from conftest import write_galaxy10

    return write_galaxy10(tmp_path / "g10.h5", n=20)


@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_training_selects_the_epoch_on_valid_and_reports_test(first_files, tmp_path, ema):
    """patience > 0: valid accuracy is logged per epoch of the last stage, the best epoch is kept — with
    ``ema``, the moving average is what is scored, kept and saved."""
    from galaxalign.inference import class_probabilities, embed_images
    from galaxalign.model import load_model
    from galaxalign.prepare import Preparation
    from galaxalign.train import TrainCfg, train

    s = load_survey(first_files / "galaxy_data_h5.h5", preparation=Preparation(cutout=96, size=32, stretch="sqrt"))
    cfg = TrainCfg(stage1_epochs=1, stage2_epochs=3, batch_size=4, warmup_steps=1, symbol_variants=2, patience=5,
                   class_aware=True, ema=ema, lr=0.01)
    res = train(cfg, survey=s, out_dir=tmp_path / "run", show_bar=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in rows if "valid_accuracy" in r and "epoch" in r]
    assert len(valid) == 3  # one per stage-2 epoch
    best = max(range(3), key=lambda i: (valid[i]["valid_accuracy"], -i))
    assert res["selected_epoch"] == valid[best]["epoch"]
    assert res["metrics"]["n"] == 4  # the test split, reported once at the end
    saved, va = load_model(tmp_path / "run"), s.split_indices("valid")
    pred = class_probabilities(saved, embed_images(saved, s, va)).argmax(1)
    assert np.mean(pred == s.labels[va]) == pytest.approx(res["valid_accuracy"])  # the weights scored are saved
    cfg_out = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg_out["n_train"] == 12 and cfg_out["n_valid"] == 4 and cfg_out["preparation"]["cutout"] == 96


def test_first_import_then_demo_bootstrap_on_the_package_files(tmp_path, monkeypatch, first_files):
    """`galaxalign demo --survey first`: imported from the package's zip with a detected preparation,
    flat workflow with the radio label set, a starter model trained on the fixed split."""
    from galaxalign.jobs import bootstrap
    bootstrap_mod = importlib.import_module("galaxalign.jobs.bootstrap")  # the module, not its function
    from galaxalign.store import active_model, get_survey, open_store
    from galaxalign.workspace import Workspace

    monkeypatch.setattr(bootstrap_mod, "first_package_dir", lambda: first_files)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"arch": "galaxalign-tiny-rn"}, "stage1_epochs": 1, "stage2_epochs": 1,
                                   "batch_size": 4, "warmup_steps": 1, "symbol_variants": 2, "class_aware": True}))
    ws = Workspace(tmp_path / "ws")
    out = bootstrap(ws, survey="first", config=str(cfg), progress=False)
    assert out["import"]["galaxies"] == 20 and out["import"]["preparation"]["stretch"] == "sqrt"
    assert out["import"]["preparation"]["cutout"] < 300 and any("cut-out" in r for r in out["import"]["reasons"])
    store = open_store(ws.database_url)
    try:
        row = get_survey(store, "first")
        assert row.workflow == "flat" and row.label_set == "first" and row.preparation["size"] == 64
        assert row.train_config == str(cfg)
        assert active_model(store).name == "starter"
    finally:
        store.dispose()
    ckpt = __import__("torch").load(ws.models / "starter" / "model.pt", weights_only=False)
    assert ckpt["symbols"] == FIRST.symbols and ckpt["preparation"]["stretch"] == "sqrt"

    # the Classify page: the radio question, each class with its own symbol and help, the proposal
    import streamlit as st

    from galaxalign.store import add_volunteer, set_proposal_gate
    from test_app import signed_in

    store = open_store(ws.database_url)
    add_volunteer(store, "vera", "volunteer", "volunteer-pw")
    gate = active_model(store).metrics["proposal"]  # the starter's calibration, from FIRST's valid split
    assert gate["calibrated_on"] == "valid" and gate["limit"] > 0
    # a starter trained for a few steps is not reliable enough for its proposals to be pre-selected:
    # open the gate to see the proposal on the page (test_app.py checks the gate itself)
    set_proposal_gate(store, "starter", confidence_floor=0.0, ood_max=1e9)
    store.dispose()
    monkeypatch.setenv("GALAXALIGN_WORKSPACE", str(ws.root))
    monkeypatch.delenv("GALAXALIGN_DATABASE_URL", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = signed_in("vera", "volunteer-pw")
    assert [h.value for h in at.subheader] == ["What kind of radio source is this?"]
    assert [at.button(key=f"ans_flat_{k}").label for k in range(4)] == FIRST.class_names
    assert at.button(key="ans_flat_1").help == FIRST[1].help
    assert any("Model proposal" in m.value for m in at.markdown)
    assert any("hotspots" in c.value for c in at.caption)  # FRII's help under its button
    at.button(key="ans_flat_1").click().run()
    assert not at.exception
    from galaxalign.store.models import Classification
    from sqlalchemy import func, select

    store = open_store(ws.database_url)
    with store.read() as sess:
        assert sess.scalar(select(func.count()).select_from(Classification)) == 1
        assert sess.scalar(select(Classification.answers)) == [["FLAT", 1]]
    store.dispose()


def test_first_package_missing_says_how_to_install(monkeypatch):
    import importlib.util

    from galaxalign.data import first_package_dir

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SurveyError, match=r"pip install 'galaxalign\[first\]'"):
        first_package_dir()


def test_the_installed_package_loads_with_its_fixed_split():
    """The real data (a dependency of the `first` extra): 2,158 sources, 1,758 / 200 / 200."""
    from galaxalign.data import first_package_dir

    s = load_survey(first_package_dir() / "galaxy_data_h5.zip")
    assert len(s) == 2158
    assert s.catalog["split"].value_counts().to_dict() == {"train": 1758, "valid": 200, "test": 200}
    assert s.class_counts() == {"FRI": 495, "FRII": 924, "Compact": 391, "Bent": 348}
    for part in ("valid", "test"):
        idx = s.split_indices(part)
        assert np.bincount(s.labels[idx]).tolist() == [50, 50, 50, 50]


def test_cli_import_of_10000_galaxies_keeps_memory_bounded(tmp_path):
    """The importer streams: its peak memory grows far less than the survey's size."""
    n, side = 10_000, 64
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("images", (n, side, side, 3), np.uint8, chunks=(64, side, side, 3), compression="gzip")
        block = np.zeros((1000, side, side, 3), np.uint8)
        block[:, 28:36, 28:36] = 200
        for s in range(0, n, 1000):
            ds[s:s + 1000] = block
        f["ans"] = (np.arange(n) % 10).astype(np.uint8)
    raw_mb = n * side * side * 3 / 2**20  # 117 MiB of pixels
    probe = ("import resource, sys, runpy; sys.argv = ['galaxalign'] + sys.argv[1:];"
             "from galaxalign.cli import main\n"
             "try: main(sys.argv[1:])\n"
             "finally: print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    base = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, timeout=300)
    r = subprocess.run([sys.executable, "-c", probe, "import", str(path), "--name", "big", "--workspace",
                        str(tmp_path / "ws"), "--workflow", "gz2", "--stretch", "none"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "registered survey 'big'" in r.stdout and "10000 galaxies" in r.stdout
    peak = lambda out: int(out.strip().splitlines()[-1].split()[-1]) / 1024  # noqa: E731  (MiB)
    grown = peak(r.stderr) - peak(base.stderr)
    assert grown < raw_mb / 2, f"import grew by {grown:.0f} MiB for {raw_mb:.0f} MiB of pixels"
    assert load_survey(tmp_path / "ws" / "surveys" / "imported" / "big.h5").labels[:3].tolist() == [0, 1, 2]


@pytest.mark.parametrize("args, message", [
    (["import", "{missing}", "--name", "x1"], "no such file or folder"),
    (["import", "{first}", "--name", "x2", "--cutout", "400"], "cut-out of 400 px is larger than its 300×300-px images"),
    (["import", "{first}", "--name", "x3", "--stretch", "asinh", "--clip-low", "90", "--clip-high", "10"],
     "clip percentiles must satisfy"),
    (["import", "{first}", "--name", "x4", "--stretch", "cubic"], "stretch 'cubic' is not one of"),
    (["prepare", "{first}", "--cutout", "4000"], "cut-out of 4000 px is larger"),
    (["import", "{first}", "--name", "x5", "--labelset", "{badyaml}"], "not valid YAML"),
])
def test_bad_import_and_preparation_are_one_line_exit_2_and_register_nothing(first_files, tmp_path, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    subs = {"{missing}": str(tmp_path / "nope.h5"), "{first}": str(first_files / "galaxy_data_h5.h5"),
            "{badyaml}": str(bad)}
    ws = tmp_path / "ws"
    argv = [subs.get(a, a) for a in args] + (["--workspace", str(ws)] if args[0] == "import" else [])
    r = subprocess.run([sys.executable, "-m", "galaxalign", *argv], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not (ws / "surveys" / "imported").exists() or not list((ws / "surveys" / "imported").iterdir())
    if (ws / "galaxalign.db").exists():
        from galaxalign.store import list_surveys, open_store

        st = open_store(f"sqlite:///{ws / 'galaxalign.db'}")
        assert list_surveys(st) == []
        st.dispose()


def test_prepare_cli_prints_the_reasons_and_writes_the_preview(first_files, tmp_path):
    out = tmp_path / "preview.png"
    r = subprocess.run([sys.executable, "-m", "galaxalign", "prepare", str(first_files / "galaxy_data_h5.h5"),
                        "--preview", str(out), "--n", "4", "--save", str(tmp_path / "prep.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "cut-out" in r.stdout and "sqrt stretch" in r.stdout and "sampled sources reach" in r.stdout
    with Image.open(out) as im:
        assert im.width > 4 * 128 and im.height > 2 * 128  # four columns, before above after
    prep = json.loads((tmp_path / "prep.json").read_text())
    assert prep["stretch"] == "sqrt" and prep["size"] == 64


def test_cli_train_detects_the_preparation_and_eval_reuses_the_models(first_files, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"arch": "galaxalign-tiny-rn", "norm": "group"}, "stage1_epochs": 1,
                                   "stage2_epochs": 1, "batch_size": 4, "warmup_steps": 1, "symbol_variants": 2,
                                   "class_aware": True}))
    src = str(first_files / "galaxy_data_h5.h5")
    r = subprocess.run([sys.executable, "-m", "galaxalign", "train", "--config", str(cfg), "--survey", src,
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "preparation (detected): cut-out" in r.stderr and "accuracy" in r.stdout
    r = subprocess.run([sys.executable, "-m", "galaxalign", "eval", "--model", str(tmp_path / "run"), "--survey", src],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "preparation (the model's): cut-out" in r.stderr
    assert json.loads(r.stdout)["n"] == 4  # the fixed test split


def test_balanced_epochs_draw_every_class_equally_often():
    from galaxalign.train import epoch_order

    labels = np.array([0] * 800 + [1] * 150 + [2] * 50)
    idx = np.arange(1000)
    plain = epoch_order(idx, labels, seed=0, epoch=0)
    assert sorted(plain.tolist()) == idx.tolist()  # a permutation
    counts = np.bincount(labels[epoch_order(idx, labels, seed=0, epoch=0, balanced=True)], minlength=3)
    assert counts.sum() == 1000 and counts.min() > 280 and counts.max() < 390  # about a third each
    assert not np.array_equal(epoch_order(idx, labels, 0, 1, True), epoch_order(idx, labels, 0, 0, True))
