"""Label sets as YAML files: one format for the built-in sets and the user's, with every refusal."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from galaxalign.symbols import render_symbol
from galaxalign.taxonomy import (FIRST, GALAXY10, GALAXY_MNIST, LABELSET_DIR, LabelSetError, get_label_set,
                                 load_label_set)


def _write(tmp_path, text: str, pngs=("lobes.png",)):
    for name in pngs:
        img = np.full((40, 40, 3), 58, np.uint8)
        img[15:25, 5:35] = 240
        Image.fromarray(img).save(tmp_path / name)
    p = tmp_path / "radio.yaml"
    p.write_text(text)
    return p


GOOD = """
name: my_radio
title: My radio survey
question: What kind of source?
classes:
  - name: Double
    prompt: A radio image of a double-lobed source
    help: Two lobes.
    symbol: lobes.png
  - name: Point
    help: One blob.
    symbol: radio/compact
"""


def test_round_trip_of_a_user_file_with_its_own_png_symbol(tmp_path):
    ls = load_label_set(_write(tmp_path, GOOD))
    assert ls.name == "my_radio" and ls.title == "My radio survey" and ls.question == "What kind of source?"
    assert ls.class_names == ["Double", "Point"] and ls.tree is None
    assert ls[0].prompt == "A radio image of a double-lobed source"
    assert ls[1].prompt == "A picture of a point galaxy"  # no prompt: the paper's form
    assert ls[0].symbol == str((tmp_path / "lobes.png").resolve()) and ls[0].help == "Two lobes."
    canonical = np.asarray(render_symbol(ls[0].symbol, 32))
    variant = np.asarray(render_symbol(ls[0].symbol, 32, np.random.default_rng(3)))
    assert canonical.shape == variant.shape == (32, 32, 3) and not np.array_equal(canonical, variant)
    assert get_label_set(str(tmp_path / "radio.yaml")).class_names == ls.class_names
    ls.check_trimodal()


def test_built_in_sets_are_files_in_the_same_format():
    assert {p.stem for p in LABELSET_DIR.glob("*.yaml")} == {"galaxy10", "galaxy_mnist", "first"}
    assert GALAXY10.source.endswith("galaxy10.yaml") and GALAXY10.tree == "gz2"
    assert GALAXY10.class_names[9] == "Edge-on with Bulge" and GALAXY10[5].prompt == "A picture of a barred spiral galaxy"
    assert GALAXY_MNIST.resolve(GALAXY_MNIST[3].path) == 3
    assert FIRST.tree is None and FIRST.symbols == ["radio/fri", "radio/frii", "radio/compact", "radio/bent"]
    for ls in (GALAXY10, GALAXY_MNIST, FIRST):
        ls.check_trimodal()
    # FIRST prompts are in words, not bare class codes
    assert all(len(p.split()) >= 8 and "FRI" not in p for p in FIRST.prompts)


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("lobes.png", "missing.png"), "symbol file missing.png is missing"),
    (GOOD.replace("name: Point", "name: double"), "class 'double' appears twice"),
    (GOOD.replace("symbol: radio/compact", "symbol: radio/nothing"), "neither a PNG file nor a glyph"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- just a list\n", "expected a mapping"),
    (GOOD.replace("name: my_radio", "name: My Radio"), "name 'My Radio' must be"),
    (GOOD.replace("title:", "colour: red\ntitle:"), "unknown key(s) colour"),
    (GOOD + "tree: gz2\n", "needs a 'path' of answer ids"),
])
def test_bad_files_are_refused_naming_the_file_and_the_problem(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(LabelSetError) as e:
        load_label_set(p)
    assert str(p) in str(e.value) and message in str(e.value)


def test_trimodal_refuses_a_shared_symbol_naming_both_classes(tmp_path):
    ls = load_label_set(_write(tmp_path, GOOD.replace("symbol: radio/compact", "symbol: lobes.png")))
    with pytest.raises(LabelSetError, match=r"classes 'Double' and 'Point' share the symbol lobes.png"):
        ls.check_trimodal()


def test_trimodal_refuses_prompts_identical_after_tokenization(tmp_path):
    from galaxalign.model import ModelCfg, create_model

    text = GOOD.replace("help: One blob.", "help: One blob.\n    prompt: a RADIO image of a   double-lobed source")
    ls = load_label_set(_write(tmp_path, text))
    with pytest.raises(LabelSetError, match=r"classes 'Double' and 'Point' have the same prompt after tokenization"):
        ls.check_trimodal(create_model(ModelCfg()).tokenize)


def test_a_trimodal_run_on_classes_without_a_label_set_is_refused(tmp_path):
    """A folder survey with custom class names has no symbols of its own: the run stops before training."""
    from galaxalign.data import load_survey
    from galaxalign.train import ConfigError, TrainCfg, train

    rng = np.random.default_rng(0)
    rows = ["id_str,file_loc,label"]
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"g{i},{i}.png,{'FRI' if i % 2 else 'FRII'}")
    (tmp_path / "catalog.csv").write_text("\n".join(rows) + "\n")
    s = load_survey(tmp_path)
    with pytest.raises(ConfigError, match=r"classes \(FRI, FRII\) have no label set"):
        train(TrainCfg(batch_size=4, stage1_epochs=1, stage2_epochs=0), survey=s, out_dir=tmp_path / "run",
              show_bar=False)
    # with the label set file the same survey gets its classes' own symbols and prompts
    s2 = load_survey(tmp_path, label_set="first")
    assert s2.label_set is FIRST and s2.class_names == FIRST.class_names
    assert sorted(set(s2.labels.tolist())) == [0, 1]  # FRI → 0, FRII → 1 in the label set's order


def test_labelset_check_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "galaxalign", "labelset", "check", str(LABELSET_DIR / "first.yaml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "label set 'first'" in r.stdout and "radio/frii" in r.stdout and "4 classes, flat" in r.stdout
    p = _write(tmp_path, GOOD.replace("lobes.png", "gone.png"))
    r = subprocess.run([sys.executable, "-m", "galaxalign", "labelset", "check", str(p)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "gone.png is missing" in r.stderr
