"""What the pages show, computed in the package: the volunteer's view controls, the thumbnail sheet,
uploaded query images, and single-sign-on account names."""
import io

import numpy as np
import pytest
from PIL import Image

from galaxalign.viewing import (ViewError, adjust_view, density_image, in_bounds, map_bounds, map_sample,
                               read_query_image, thumbnail_sheet, upscale)


def test_zoom_crops_the_centre_and_stretches_lift_faint_light():
    img = np.zeros((64, 64, 3), np.uint8)
    img[28:36, 28:36] = 20  # a faint core
    assert adjust_view(img, 2.0).shape == (32, 32, 3)
    assert adjust_view(img, 2.0)[16, 16, 0] == 20  # the centre stays the centre
    lin, asinh, log = (adjust_view(img, 1.0, s)[32, 32, 0] for s in ("linear", "asinh", "log"))
    assert lin == 20 and asinh > 40 and log > 40  # faint structure lifted
    assert adjust_view(img, 1.0, "linear", invert=True)[0, 0, 0] == 255  # empty sky turns white
    with pytest.raises(ViewError, match="stretch 'gamma'"):
        adjust_view(img, 1.0, "gamma")
    with pytest.raises(ViewError, match="zoom"):
        adjust_view(img, 0.5)


def test_upscale_enlarges_small_cutouts_only():
    small = np.zeros((32, 32, 3), np.uint8)
    assert upscale(small, 160).shape == (160, 160, 3)
    big = np.zeros((200, 200, 3), np.uint8)
    assert upscale(big, 160) is big


def test_thumbnail_sheet_puts_each_galaxy_in_its_cell():
    cells = np.array([[0, -1], [2, 1]])
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    images = lambda idx: np.stack([np.full((8, 8, 3), colours[i], np.uint8) for i in idx])  # noqa: E731
    sheet = np.asarray(Image.open(io.BytesIO(thumbnail_sheet(cells, images, cell=10))))
    assert sheet.shape == (20, 20, 3)
    assert tuple(sheet[5, 5]) == (255, 0, 0) and tuple(sheet[15, 15]) == (0, 255, 0)
    assert tuple(sheet[15, 5]) == (0, 0, 255) and tuple(sheet[5, 15]) == (14, 14, 18)  # the empty cell


def _png(size, mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, format="PNG")
    return buf.getvalue()


def test_query_images_come_in_the_survey_layout_and_bad_ones_are_one_line():
    assert read_query_image(_png((40, 30)), "q.png", grey=False).shape == (30, 40, 3)
    assert read_query_image(_png((40, 30)), "q.png", grey=True).shape == (30, 40)
    with pytest.raises(ViewError, match="q.png: not a readable image"):
        read_query_image(b"\x89PNG junk", "q.png", grey=False)
    with pytest.raises(ViewError, match="larger than 4096 px"):
        read_query_image(_png((5000, 10), "L"), "wide.png", grey=True)
    with pytest.raises(ViewError, match="MB limit"):
        read_query_image(b"0" * (6 * 1024 * 1024), "huge.png", grey=False)


@pytest.mark.parametrize("claim, name", [("ada.lovelace@example.org", "ada.lovelace"),
                                         ("Zoë+zoo@example.org", "Zo--zoo"), ("@example.org", "user"),
                                         ("x" * 80 + "@a.b", "x" * 40), ("sub|12345", "sub-12345")])
def test_sign_on_names_are_valid_account_names(claim, name):
    from galaxalign.store import sign_on_name
    from galaxalign.validate import NAME_RE

    assert sign_on_name(claim) == name and NAME_RE.fullmatch(name)


def test_a_sign_on_account_is_made_once(store):
    from galaxalign.store import account_for_sign_on

    a = account_for_sign_on(store, "ada@example.org")
    b = account_for_sign_on(store, "ada@example.org")
    assert a.id == b.id and a.name == "ada" and a.role == "volunteer" and a.password_hash is None


def test_a_large_map_draws_a_bounded_repeatable_sample():
    assert map_sample(500, 1000).tolist() == list(range(500))
    rows = map_sample(1_000_000, 100_000, seed=3)
    assert len(rows) == len(set(rows.tolist())) == 100_000 and rows.min() >= 0 and rows.max() < 1_000_000
    assert (np.diff(rows) > 0).all() and np.array_equal(rows, map_sample(1_000_000, 100_000, seed=3))
    assert not np.array_equal(rows, map_sample(1_000_000, 100_000, seed=4))


def test_the_density_image_shows_every_point_where_it_lies_and_nothing_elsewhere():
    rng = np.random.default_rng(0)
    xy = np.concatenate([rng.normal([-2, 0], 0.1, (200_000, 2)), rng.normal([2, 0], 0.1, (1, 2))])  # one lone point
    bounds = map_bounds(xy)
    assert in_bounds(xy, bounds).all() and bounds[0][0] < -2.3 and bounds[0][1] > 2
    img = np.asarray(density_image(xy, bounds, width=200, height=100))
    assert img.shape == (100, 200, 4)
    alpha = img[..., 3]
    col = lambda x: int((x - bounds[0][0]) / (bounds[0][1] - bounds[0][0]) * 200)  # noqa: E731
    assert alpha[:, col(-2)].max() > 0 and alpha[:, col(xy[-1, 0]) - 1: col(xy[-1, 0]) + 2].max() > 0  # the lone galaxy is seen
    assert alpha[:, col(0)].max() == 0 and (alpha > 0).mean() < 0.2  # empty sky stays transparent
    assert not in_bounds(xy, ((0.0, 1.0), (-1.0, 1.0))).any()


def test_the_map_view_colours_filters_and_samples_without_streamlit():
    """Explore's map, computed in the package: consensus, disagreement and flags joined by id; the flag
    filter and the bounds choose the galaxies; a large view is sampled to the point budget."""
    import pandas as pd

    from galaxalign.viewing import map_view

    n = 50
    xy = np.stack([np.arange(n, dtype=float), np.zeros(n)], 1)
    preds = pd.DataFrame({"id_str": [f"g{i}" for i in range(n)], "pred": np.arange(n) % 2,
                          "confidence": np.full(n, 0.9), "ood": np.linspace(0, 2, n)})
    labels = np.where(np.arange(n) < 10, np.arange(n) % 2, -1)
    consensus = pd.DataFrame({"id_str": ["g0", "g1", "g2"], "consensus_label": [0, 0, None]})
    flags = pd.DataFrame({"id_str": ["g1", "g5"], "odd": [1, 0], "favourites": [0, 2]})
    v = map_view(xy, preds, labels, ["A", "B"], consensus, flags)
    df = v.frame.sort_index()
    assert v.in_view == n and not v.sampled and not v.zoomed and len(df) == n
    assert df.loc[0, "consensus"] == "A" and df.loc[0, "volunteer–model disagreement"] == "agree"
    assert df.loc[1, "volunteer–model disagreement"] == "disagree" and df.loc[2, "consensus"] == "no votes"
    assert list(df.loc[[1, 5, 7], "volunteer flags"]) == ["odd", "favourite", "none"]
    assert df.loc[3, "known label"] == "B" and df.loc[30, "known label"] == "unknown"
    assert "unfamiliarity" in df
    flagged = map_view(xy, preds, labels, ["A", "B"], consensus, flags, only_flagged=True)
    assert flagged.kept == 2 and sorted(flagged.frame.id_str) == ["g1", "g5"]
    zoom = map_view(xy, preds, labels, ["A", "B"], consensus, flags, bounds=((9.5, 19.5), (-1.0, 1.0)))
    assert zoom.zoomed and sorted(zoom.frame.index) == list(range(10, 20))
    sampled = map_view(xy, preds, labels, ["A", "B"], consensus, flags, max_points=20)
    assert sampled.sampled and len(sampled.frame) == 20 and sampled.in_view == n
