"""The glyph set rendered from matplotlib's fonts: counts, coverage, ink, determinism, cache, splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlterms.data import glyphs as G


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Each test gets an empty cache folder and a cold per-process cache."""
    monkeypatch.setenv("DLTERMS_CACHE", str(tmp_path))
    G._glyph_arrays.cache_clear()
    yield
    G._glyph_arrays.cache_clear()


def test_class_counts_per_alphabet():
    gs = G.glyphs(seed=0, per_class=4)
    counts = {a: len(gs.classes_of(a)) for a in G.ALPHABETS}
    assert counts == {"latin": 52, "greek": 49, "cyrillic": 64, "armenian": 76, "georgian": 33, "hebrew": 27}
    assert gs.n_classes == 301 and len(gs) == 301 * 4
    assert torch.equal(torch.bincount(gs.labels), torch.full((301,), 4))
    assert gs.images.shape == (301 * 4, 1, 28, 28) and gs.images.dtype == torch.float32
    assert [ord(gs.chars[c]) for c in range(301)] == [c for cs in G.ALPHABETS.values() for c in cs]


def test_coverage_comes_from_the_character_maps():
    pairs, canvases = G._masters()
    assert len(pairs) == len(canvases)
    fonts = [G._load_font(f) for f in G.FONTS]
    maps = [set(f.get_charmap()) for f in fonts]
    codes = [c for cs in G.ALPHABETS.values() for c in cs]
    drawn = set(pairs)
    for cls, code in enumerate(codes):
        # every font that maps the code draws it (no font here maps a letter to an empty glyph)
        assert {fid for fid, m in enumerate(maps) if code in m} == {fid for c, fid in drawn if c == cls}
        assert sum(1 for c, _ in drawn if c == cls) >= 3, chr(code)
    cov = G.font_coverage()
    assert cov["DejaVuSans.ttf"]["hebrew"] == 27 and cov["DejaVuSerif.ttf"]["hebrew"] == 0
    assert cov["STIXGeneral.ttf"]["greek"] == 49 and cov["STIXGeneral.ttf"]["armenian"] == 0


def test_each_image_uses_a_font_that_has_its_character_and_fonts_are_cycled():
    gs = G.glyphs(seed=0, per_class=20)
    pairs = set(G._masters()[0])
    assert all((int(c), int(f)) in pairs for c, f in zip(gs.labels, gs.font_ids))
    latin_a = gs.font_ids[gs.labels == 0]  # 'A': 16 fonts, 20 images -> every font at least once
    assert len(set(latin_a.tolist())) == 16
    alef = gs.font_ids[gs.labels == gs.chars.index("\u05d0")]  # Hebrew alef: the 4 DejaVu Sans faces
    assert sorted(set(alef.tolist())) == [0, 1, 2, 3] and torch.equal(torch.bincount(alef), torch.full((4,), 5))


def test_every_image_has_ink_and_background():
    gs = G.glyphs(seed=1, per_class=6)
    flat = gs.images.flatten(1)
    assert float(flat.min()) >= 0.0 and float(flat.max()) <= 1.0
    assert float(flat.max(1).values.min()) >= 0.5  # a dark stroke in every image
    assert float((flat > 0.1).float().sum(1).min()) >= 10  # at least 10 inked pixels
    assert float((flat == 0).float().mean(1).min()) >= 0.3  # and plenty of background
    # the ink's centre of mass stays near the middle (centred glyphs, shifts of at most 2 pixels)
    grid = torch.arange(28, dtype=torch.float32)
    w = gs.images[:, 0]
    cy = (w.sum(2) * grid).sum(1) / w.sum((1, 2))
    cx = (w.sum(1) * grid).sum(1) / w.sum((1, 2))
    assert float((cy - 13.5).abs().max()) < 8 and float((cx - 13.5).abs().max()) < 8


def test_deterministic_per_seed_and_cached(tmp_path):
    a = G.glyphs(seed=3, per_class=5)
    files = list(tmp_path.glob("glyphs-*-seed3-n5.npz"))
    assert len(files) == 1
    G._glyph_arrays.cache_clear()
    b = G.glyphs(seed=3, per_class=5)  # read back from the file
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and torch.equal(a.font_ids, b.font_ids)
    fresh = G._render(3, 5)  # rendered again without the cache
    assert np.array_equal(fresh[0], (a.images[:, 0] * 255).round().to(torch.uint8).numpy())
    c = G.glyphs(seed=4, per_class=5)
    assert torch.equal(a.labels, c.labels) and not torch.equal(a.images, c.images)
    # the distortion differs between two images of one class drawn by the same font
    same_font = (a.labels == 0) & (a.font_ids == 0)
    assert int(same_font.sum()) == 1  # 5 images of 'A' come from 5 different fonts
    d = G.glyphs(seed=3, per_class=17)  # font 0 draws images 0 and 16 of each Latin letter
    two = d.images[(d.labels == 0) & (d.font_ids == 0)]
    assert len(two) == 2 and not torch.equal(two[0], two[1])


def test_damaged_cache_file_is_regenerated(tmp_path):
    a = G.glyphs(seed=2, per_class=3)
    (path,) = tmp_path.glob("glyphs-*-seed2-n3.npz")
    path.write_bytes(b"not a zip file")
    G._glyph_arrays.cache_clear()
    b = G.glyphs(seed=2, per_class=3)
    assert torch.equal(a.images, b.images)


def test_alphabet_split_is_disjoint_and_complete():
    gs = G.glyphs(seed=0, per_class=3)
    tr, te = G.alphabet_split(gs)
    assert te.alphabet_names() == ("greek", "georgian", "hebrew")
    assert tr.alphabet_names() == ("latin", "cyrillic", "armenian")
    assert not set(tr.classes.tolist()) & set(te.classes.tolist())
    assert set(tr.classes.tolist()) | set(te.classes.tolist()) == set(range(301))
    assert len(tr) + len(te) == len(gs) and tr.n_classes == 192 and te.n_classes == 109
    tr2, te2 = G.alphabet_split(gs, test="latin")
    assert te2.alphabet_names() == ("latin",) and len(tr2.alphabet_names()) == 5


def test_sample_grid_shape():
    gs = G.glyphs(seed=0, per_class=3)
    grid, names = G.sample_grid(gs, per_alphabet=7)
    assert names == tuple(G.ALPHABETS) and grid.shape == (6 * 28, 7 * 28)


def test_bad_arguments():
    with pytest.raises(ValueError, match="seed"):
        G.glyphs(seed=-1)
    with pytest.raises(ValueError, match="per_class"):
        G.glyphs(per_class=0)
    gs = G.glyphs(seed=0, per_class=3)
    with pytest.raises(ValueError, match="alphabets"):
        gs.subset(["klingon"])
    with pytest.raises(ValueError, match="alphabet"):
        gs.classes_of("runic")
    with pytest.raises(ValueError, match="test"):
        G.alphabet_split(gs, test=tuple(G.ALPHABETS))
    with pytest.raises(ValueError, match="test"):
        G.alphabet_split(gs.subset(["latin", "greek"]), test=["hebrew"])
    with pytest.raises(ValueError, match="per_alphabet"):
        G.sample_grid(gs, per_alphabet=0)
