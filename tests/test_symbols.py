import numpy as np
import pytest
from PIL import Image

from galaxalign.symbols import (BACKGROUND, SYMBOL_DIR, SymbolError, list_symbols, render_symbol, symbol_path,
                                write_symbols)
from galaxalign.taxonomy import FIRST, GALAXY10, GALAXY_MNIST


def test_one_symbol_per_answer_and_per_class():
    names = list_symbols()
    assert len(names) == 37 + 10 + 4 + 4
    assert "t03_bar" in names and "galaxy10/barred_spiral" in names and "galaxy_mnist/edge_on_disk" in names
    assert [n for n in names if n.startswith("radio/")] == FIRST.symbols
    for ls in (GALAXY10, GALAXY_MNIST, FIRST):
        for cls in ls:
            assert cls.symbol in names


def test_symbols_are_light_glyphs_on_a_dark_grey_square():
    for name in list_symbols():
        a = np.asarray(render_symbol(name, 64), float)
        assert a.shape == (64, 64, 3)
        corner = a[:3, :3].mean()
        assert abs(corner - BACKGROUND) < 12, name  # dark grey background
        assert a.max() > 150, name  # a light glyph, far above the background


def test_canonical_glyphs_are_all_different():
    arrays = {n: np.asarray(render_symbol(n, 48), float) for n in list_symbols()}
    names = list(arrays)
    # class composites may reuse an answer glyph (Round Smooth is "Completely round"), but no two
    # answers may look the same
    answers = [n for n in names if "/" not in n or n.startswith("radio/")]
    for i, a in enumerate(answers):
        for b in answers[i + 1:]:
            assert np.abs(arrays[a] - arrays[b]).mean() > 1.0, (a, b)


def test_random_variants_differ_but_are_reproducible():
    base = np.asarray(render_symbol("t10_loose", 64), float)
    v1 = np.asarray(render_symbol("t10_loose", 64, rng=np.random.default_rng(1)), float)
    v1b = np.asarray(render_symbol("t10_loose", 64, rng=np.random.default_rng(1)), float)
    v2 = np.asarray(render_symbol("t10_loose", 64, rng=np.random.default_rng(2)), float)
    assert np.array_equal(v1, v1b)
    assert np.abs(v1 - base).mean() > 2 and np.abs(v1 - v2).mean() > 2


def test_committed_pngs_are_the_output_of_the_generator(tmp_path):
    written = write_symbols(tmp_path, size=128)
    assert len(written) == 55
    for p in written:
        rel = p.relative_to(tmp_path)
        committed = SYMBOL_DIR / rel
        assert committed.exists(), f"{committed} missing: run `galaxalign symbols`"
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(committed))), rel
    assert symbol_path("galaxy10/merging") == SYMBOL_DIR / "galaxy10" / "merging.png"


def test_unknown_symbol_and_bad_size_are_clear_errors():
    with pytest.raises(SymbolError, match="unknown symbol 'spiral'"):
        render_symbol("spiral")
    with pytest.raises(SymbolError):
        symbol_path("../../etc/passwd")
    with pytest.raises(ValueError, match="size"):
        render_symbol("t01_smooth", 4)
