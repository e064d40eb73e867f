import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import write_galaxy10
from galaxalign.data import SurveyError, load_survey, stratified_split, survey_summary
from galaxalign.taxonomy import GALAXY10, GALAXY_MNIST


def test_galaxy10_file_loads_lazily_with_its_catalog(galaxy10_file):
    s = load_survey(galaxy10_file)
    assert len(s) == 12 and s.image_shape == (16, 16, 3) and s.kind == "galaxy10_h5"
    assert s.class_names == GALAXY10.class_names and s.label_set is GALAXY10
    assert s.labels.tolist() == [i % 10 for i in range(12)]
    with h5py.File(galaxy10_file) as f:
        expected = f["images"][()]
    # any order, with repeats, matches the file
    idx = [7, 2, 7, 0]
    assert np.array_equal(s.images(idx), expected[idx])
    assert {"ra", "dec", "redshift", "pxscale"} <= set(s.catalog.columns)
    assert s.id_str[0] == "Galaxy10_DECals-000000"
    with pytest.raises(IndexError):
        s.images([12])


def test_galaxy_mnist_train_and_test_files(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train_dataset.hdf5", 8), ("test_dataset.hdf5", 4)):
        with h5py.File(tmp_path / name, "w") as f:
            f["images"] = rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)
            f["labels"] = np.arange(n) % 4
    s = load_survey(tmp_path)
    assert len(s) == 12 and s.class_names == GALAXY_MNIST.class_names
    assert s.catalog["split"].tolist() == ["train"] * 8 + ["test"] * 4
    with h5py.File(tmp_path / "test_dataset.hdf5") as f:
        assert np.array_equal(s.image(9), f["images"][1])
    only_test = load_survey(tmp_path / "test_dataset.hdf5")
    assert len(only_test) == 4


def test_folder_with_catalog_of_class_names(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i, label in enumerate(["Barred Spiral", "Merging", "Merging", ""]):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / f"g{i}.png")
        rows.append({"id_str": f"J{i:04d}", "file_loc": f"g{i}.png", "label": label})
    pd.DataFrame(rows).to_csv(tmp_path / "catalog.csv", index=False)
    s = load_survey(tmp_path)
    assert s.kind == "folder" and s.label_set is GALAXY10
    assert s.labels.tolist() == [5, 1, 1, -1]
    assert s.images([0, 3]).shape == (2, 20, 20, 3)
    assert s.class_counts()["(unlabelled)"] == 1


def test_folder_with_custom_class_names(tmp_path):
    for i, label in enumerate(["ring", "lens", "ring"]):
        Image.new("RGB", (12, 12), (i * 40, 0, 0)).save(tmp_path / f"{i}.jpg")
    pd.DataFrame({"id_str": ["a", "b", "c"], "file_loc": ["0.jpg", "1.jpg", "2.jpg"],
                  "label": ["ring", "lens", "ring"]}).to_csv(tmp_path / "catalog.csv", index=False)
    s = load_survey(tmp_path / "catalog.csv")
    assert s.class_names == ["lens", "ring"] and s.labels.tolist() == [1, 0, 1] and s.label_set is None


def test_an_integer_label_far_out_of_range_names_its_row(tmp_path):
    labels = [0, 3, 9, 42, 1]
    for i in range(len(labels)):
        Image.new("RGB", (12, 12), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
    pd.DataFrame({"id_str": [f"g{i}" for i in range(5)], "file_loc": [f"{i}.png" for i in range(5)],
                  "label": labels}).to_csv(tmp_path / "catalog.csv", index=False)
    with pytest.raises(SurveyError, match="row 4: label 42 leaves classes 2–41 with no galaxy"):
        load_survey(tmp_path)


def test_fits_cutouts_become_rgb(tmp_path):
    from astropy.io import fits

    rng = np.random.default_rng(0)
    for i in range(2):
        cube = rng.normal(0, 1, (3, 24, 24))
        cube[:, 10:14, 10:14] += [[[5.0]], [[20.0]], [[40.0]]]  # a red source: z brightest
        fits.PrimaryHDU(cube.astype(np.float32)).writeto(tmp_path / f"cut{i}.fits")
    s = load_survey(tmp_path)
    assert s.kind == "fits" and len(s) == 2 and s.image_shape == (24, 24, 3)
    img = s.image(0).astype(int)
    centre = img[10:14, 10:14].mean((0, 1))
    assert centre[0] > centre[2]  # z → red channel is brighter than g → blue
    assert s.id_str.tolist() == ["cut0", "cut1"]


@pytest.mark.parametrize("overrides, message", [
    ({"images": None}, "missing key 'images'"),
    # one band and float flux are valid raw surveys (a preparation makes them pictures); these are not
    ({"images": np.zeros((12, 16, 16, 20), np.uint8)}, r"shape \(12, 16, 16, 20\); expected \(N, H, W, 3\) RGB"),
    ({"images": np.zeros((12, 16), np.uint8)}, r"shape \(12, 16\); expected"),
    ({"images": np.zeros((12, 16, 16, 3), np.bool_)}, "dtype bool; expected uint8"),
    ({"ans": np.array([0] * 11 + [12], np.uint8)}, "label 12 at index 11 is out of range 0–9"),
    ({"ans": np.zeros(5, np.uint8)}, r"'ans' has shape \(5,\)"),
    ({"images": np.zeros((0, 16, 16, 3), np.uint8), "ans": np.zeros(0, np.uint8), "ra": None, "dec": None,
      "redshift": None, "pxscale": None}, "empty"),
])
def test_bad_galaxy10_files_name_the_file_and_the_problem(tmp_path, overrides, message):
    path = write_galaxy10(tmp_path / "bad.h5", **overrides)
    with pytest.raises(SurveyError, match=message) as err:
        load_survey(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_truncated_and_non_hdf5_files(tmp_path, galaxy10_file):
    data = galaxy10_file.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SurveyError, match="truncated.h5: "):
        load_survey(truncated)
    text = tmp_path / "notes.h5"
    text.write_text("not a survey")
    with pytest.raises(SurveyError, match="not an HDF5 file"):
        load_survey(text)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(SurveyError, match="empty"):
        load_survey(empty)
    with pytest.raises(SurveyError, match="no such file"):
        load_survey(tmp_path / "missing.h5")


def test_unreadable_or_hostile_folder_entries(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    pd.DataFrame({"id_str": ["a", "b"], "file_loc": ["ok.png", "broken.png"]}).to_csv(tmp_path / "catalog.csv",
                                                                                   index=False)
    with pytest.raises(SurveyError, match="broken.png: unreadable image"):
        load_survey(tmp_path)
    pd.DataFrame({"id_str": ["a", "b"], "file_loc": ["ok.png", "../../etc/passwd"]}).to_csv(
        tmp_path / "catalog.csv", index=False)
    with pytest.raises(SurveyError, match="outside the survey folder"):
        load_survey(tmp_path)
    pd.DataFrame({"id_str": ["a", "a"], "file_loc": ["ok.png", "ok.png"]}).to_csv(tmp_path / "catalog.csv", index=False)
    with pytest.raises(SurveyError, match="'a' appears more than once"):
        load_survey(tmp_path)
    pd.DataFrame({"name": ["a"]}).to_csv(tmp_path / "catalog.csv", index=False)
    with pytest.raises(SurveyError, match="lacks column"):
        load_survey(tmp_path)
    pd.DataFrame({"id_str": [], "file_loc": []}).to_csv(tmp_path / "catalog.csv", index=False)
    with pytest.raises(SurveyError, match="empty"):
        load_survey(tmp_path)


def test_stratified_split_is_80_20_per_class_and_reproducible():
    labels = np.repeat(np.arange(4), [50, 20, 10, 1])
    tr, te = stratified_split(labels, 0.2, seed=1)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(labels)
    for c, n in zip(range(3), (50, 20, 10)):
        assert (labels[te] == c).sum() == round(0.2 * n)
    assert 80 in tr  # a singleton class stays in train
    tr2, te2 = stratified_split(labels, 0.2, seed=1)
    assert np.array_equal(te, te2)
    assert not np.array_equal(te, stratified_split(labels, 0.2, seed=2)[1])
    unl = stratified_split(np.array([-1, 0, 0, 0, 0, 0]), 0.2, seed=0)
    assert 0 not in np.concatenate(unl)


def test_summary_counts_classes(synth_h5):
    s = survey_summary(load_survey(synth_h5))
    assert s["galaxies"] == 60 and sum(s["classes"].values()) == 60 and s["image_shape"] == [32, 32, 3]
