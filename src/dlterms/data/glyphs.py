r"""A glyph set in the spirit of Omniglot, rendered offline from the fonts that ship with matplotlib.

Omniglot (Lake, Salakhutdinov & Tenenbaum, 2015) is the usual test bed for verification and few-shot
learning: many characters from many alphabets, a few images of each, with whole alphabets held out.
This set is built the same way from typeset letters instead of handwriting:

- classes are the letters of six alphabets (`ALPHABETS`): Latin (52, upper and lower case), Greek
  (49, with final sigma), Cyrillic (64, the basic Russian letters), Armenian (76), Georgian (the 33
  modern Mkhedruli letters) and Hebrew (27, with the final forms): 301 characters;
- each character is drawn in every font of `FONTS` whose character map (FreeType's, read with
  matplotlib's `FT2Font.get_charmap`) has it, and whose glyph has ink: DejaVu Sans, Sans Mono and
  Serif and STIX General, each in four faces (regular, bold, italic or oblique, bold italic): 16 fonts
  for Latin, Greek and Cyrillic, 12 for Armenian and Georgian (not in STIX), 4 for Hebrew (DejaVu
  Sans only);
- image $k$ of a class uses the class's font $k \bmod n_\text{fonts}$ and a random affine distortion of
  its own, as Koch et al. (2015) augmented Omniglot: output point $p' = M p + t$ with
  $M = R(\theta)\,\mathrm{Sh}(\rho_x, \rho_y)\,\mathrm{diag}(s_x, s_y)$,
  $\theta \sim U[-10°, 10°]$, $\rho \sim U[-0.2, 0.2]$, $s \sim U[0.8, 1.2]$ and
  $t \sim U[-2, 2]$ pixels per axis (`DISTORTION`).

Speed: every (font, character) pair is rasterised once by FreeType, antialiased, at a 38-pixel em and
centred on its ink box in a 56 x 56 canvas; all the distortions are then applied in one batch by
`torch.nn.functional.grid_sample` (bilinear) at 56 x 56, and each image is averaged down 2 x 2 to
28 x 28. Letters keep their size relative to each other (a lower-case o is smaller than an O), since
they are all drawn at one point size. Pixels are ink in [0, 1] (0 is background), stored as uint8.

The set is deterministic per `seed` (the seed draws the distortions; the glyphs themselves are
fixed by the fonts), generated in about a second and cached on disk under DLTERMS_CACHE (or
~/.cache/dlterms), keyed by the generator's version, matplotlib's version (which fixes the fonts),
the seed and the number of images per class, and written atomically.

`alphabet_split` holds out whole alphabets: by default Greek, Georgian and Hebrew are the test
alphabets, Latin, Cyrillic and Armenian the training ones. Note that some Greek and Cyrillic
capitals share their shapes with Latin ones (A, B, E, ...): a held-out Greek class is a new label,
not always a new shape; Georgian and Hebrew share no letter with the training alphabets.
`sample_grid` lays out a few images of each alphabet for a figure (the siamese-networks experiment
shows one).
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "ALPHABETS",
    "FONTS",
    "DISTORTION",
    "TEST_ALPHABETS",
    "GlyphSet",
    "glyphs",
    "alphabet_split",
    "font_coverage",
    "sample_grid",
]

_VERSION = 1  # bump when the rendering changes, so old cache files are not reused

ALPHABETS: dict[str, tuple[int, ...]] = {
    "latin": (*range(0x41, 0x5B), *range(0x61, 0x7B)),  # A-Z, a-z
    "greek": (*(c for c in range(0x391, 0x3AA) if c != 0x3A2), *range(0x3B1, 0x3CA)),  # Alpha-Omega, alpha-omega
    "cyrillic": tuple(range(0x410, 0x450)),  # A-ya
    "armenian": (*range(0x531, 0x557), *range(0x561, 0x587)),  # Ayb-Feh, ayb-feh
    "georgian": tuple(range(0x10D0, 0x10F1)),  # the 33 modern Mkhedruli letters, an-hae
    "hebrew": tuple(range(0x5D0, 0x5EB)),  # alef-tav, with the five final forms
}

FONTS: tuple[str, ...] = tuple(
    f"{family}{face}.ttf"
    for family, faces in (
        ("DejaVuSans", ("", "-Bold", "-Oblique", "-BoldOblique")),
        ("DejaVuSansMono", ("", "-Bold", "-Oblique", "-BoldOblique")),
        ("DejaVuSerif", ("", "-Bold", "-Italic", "-BoldItalic")),
        ("STIXGeneral", ("", "Bol", "Italic", "BolIta")),
    )
    for face in faces
)

TEST_ALPHABETS: tuple[str, ...] = ("greek", "georgian", "hebrew")

DISTORTION = {
    "rotation_degrees": 10.0,  # theta ~ U[-10, 10] degrees
    "shear": 0.2,  # rho_x, rho_y ~ U[-0.2, 0.2]
    "scale": (0.8, 1.2),  # s_x, s_y ~ U[0.8, 1.2]
    "shift_pixels": 2.0,  # t ~ U[-2, 2] pixels of the 28 x 28 image, per axis
}

_EM = 38  # pixels per em when rasterising, in the 56 x 56 canvas
_CANVAS = 56  # rendering canvas, averaged 2 x 2 down to 28 x 28
_SIZE = 28


@dataclass
class GlyphSet:
    """Images of characters with their classes, alphabets and fonts.

    Class ids are global (the same character has the same id in every subset), so `chars[c]` and
    `alphabets[c]` name class c; `fonts[font_ids[i]]` is image i's font file.
    """

    images: torch.Tensor  # (N, 1, 28, 28) float32 ink in [0, 1]
    labels: torch.Tensor  # (N,) int64 class ids
    font_ids: torch.Tensor  # (N,) int64 indices into `fonts`
    chars: tuple[str, ...]  # class id -> the character
    alphabets: tuple[str, ...]  # class id -> its alphabet
    fonts: tuple[str, ...]  # font files

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> torch.Tensor:
        """The class ids present, sorted; (C,)."""
        return self.labels.unique()

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def alphabet_names(self) -> tuple[str, ...]:
        """The alphabets present, in `ALPHABETS` order."""
        present = {self.alphabets[c] for c in self.classes.tolist()}
        return tuple(a for a in ALPHABETS if a in present)

    def classes_of(self, alphabet: str) -> torch.Tensor:
        """The class ids of one alphabet present in this set; (C_a,)."""
        if alphabet not in ALPHABETS:
            raise ValueError(f"alphabet must be one of {sorted(ALPHABETS)}, got {alphabet!r}")
        return torch.tensor([c for c in self.classes.tolist() if self.alphabets[c] == alphabet], dtype=torch.int64)

    def subset(self, alphabets) -> GlyphSet:
        """The images of the classes of the given alphabets (class ids unchanged)."""
        names = (alphabets,) if isinstance(alphabets, str) else tuple(alphabets)
        bad = [a for a in names if a not in ALPHABETS]
        if bad or not names:
            raise ValueError(f"alphabets must be a non-empty list of {sorted(ALPHABETS)}, got {alphabets!r}")
        keep_class = torch.tensor([a in names for a in self.alphabets])
        keep = keep_class[self.labels]
        return GlyphSet(
            self.images[keep], self.labels[keep], self.font_ids[keep], self.chars, self.alphabets, self.fonts
        )

    def to(self, device) -> GlyphSet:
        return GlyphSet(
            self.images.to(device),
            self.labels.to(device),
            self.font_ids.to(device),
            self.chars,
            self.alphabets,
            self.fonts,
        )


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _load_font(name: str):
    from matplotlib.ft2font import FT2Font

    return FT2Font(str(_font_dir() / name))


def _rasterise(font, code: int) -> np.ndarray:
    """One character, antialiased at `_EM` pixels per em: its ink box as float32 in [0, 1]."""
    try:  # matplotlib >= 3.10
        from matplotlib.ft2font import LoadFlags

        flags = LoadFlags.NO_HINTING
    except ImportError:  # pragma: no cover - older matplotlib
        from matplotlib.ft2font import LOAD_NO_HINTING as flags
    font.set_size(_EM, 72)  # 72 dpi: points are pixels
    font.set_text(chr(code), 0.0, flags=flags)
    font.draw_glyphs_to_bitmap(antialiased=True)
    return np.asarray(font.get_image(), dtype=np.float32) / 255.0


def _centre(bitmap: np.ndarray) -> np.ndarray:
    """The ink box of `bitmap` centred in a `_CANVAS` square (shrunk by area averaging if it does not fit
    with a margin of 4 pixels)."""
    rows, cols = np.nonzero(bitmap > 0)
    ink = bitmap[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    limit = _CANVAS - 8
    if max(ink.shape) > limit:
        f = limit / max(ink.shape)
        t = torch.from_numpy(np.ascontiguousarray(ink))[None, None]
        shape = (max(1, round(ink.shape[0] * f)), max(1, round(ink.shape[1] * f)))
        ink = torch.nn.functional.interpolate(t, size=shape, mode="area")[0, 0].numpy()
    out = np.zeros((_CANVAS, _CANVAS), dtype=np.float32)
    r0, c0 = (_CANVAS - ink.shape[0]) // 2, (_CANVAS - ink.shape[1]) // 2
    out[r0 : r0 + ink.shape[0], c0 : c0 + ink.shape[1]] = ink
    return out


@functools.lru_cache(maxsize=1)
def _masters() -> tuple[list[tuple[int, int]], np.ndarray]:
    """Every (class id, font id) pair that draws, in class order, and its undistorted canvas
    (P, 56, 56). Class ids follow `ALPHABETS` order; a character's charmap entry counts only if its
    glyph has ink (a font may map a code to an empty glyph)."""
    fonts = [_load_font(name) for name in FONTS]
    charmaps = [set(f.get_charmap()) for f in fonts]
    pairs, canvases = [], []
    codes = [c for cs in ALPHABETS.values() for c in cs]
    for cls, code in enumerate(codes):
        for fid, (font, cmap) in enumerate(zip(fonts, charmaps)):
            if code not in cmap:
                continue
            bitmap = _rasterise(font, code)
            if bitmap.size == 0 or bitmap.max() <= 0.25:
                continue
            pairs.append((cls, fid))
            canvases.append(_centre(bitmap))
    return pairs, np.stack(canvases)


def font_coverage() -> dict[str, dict[str, int]]:
    """For each font of `FONTS`, how many characters of each alphabet it draws."""
    pairs, _ = _masters()
    alph = [a for a, cs in ALPHABETS.items() for _ in cs]
    cov = {f: dict.fromkeys(ALPHABETS, 0) for f in FONTS}
    for cls, fid in pairs:
        cov[FONTS[fid]][alph[cls]] += 1
    return cov


def _affine_thetas(n: int, rng: np.random.Generator) -> torch.Tensor:
    """Sampling matrices for `affine_grid`, (n, 2, 3): the inverse of p' = M p + t in the canvas's
    normalised coordinates ([-1, 1] across the canvas)."""
    d = DISTORTION
    theta = np.deg2rad(rng.uniform(-d["rotation_degrees"], d["rotation_degrees"], n))
    shear = rng.uniform(-d["shear"], d["shear"], (n, 2))
    scale = rng.uniform(*d["scale"], (n, 2))
    shift = rng.uniform(-d["shift_pixels"], d["shift_pixels"], (n, 2)) * 2.0 / _SIZE  # pixels -> [-1, 1] units
    c, s = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (n, 2, 2)
    sh = np.stack([np.stack([np.ones(n), shear[:, 0]], -1), np.stack([shear[:, 1], np.ones(n)], -1)], -2)
    m = rot @ sh @ (scale[:, :, None] * np.eye(2))  # M = R Sh S, (n, 2, 2)
    m_inv = np.linalg.inv(m)
    t_inv = -(m_inv @ shift[:, :, None])  # p = M^-1 p' - M^-1 t
    return torch.from_numpy(np.concatenate([m_inv, t_inv], axis=2).astype(np.float32))


def _render(seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels (N,), font ids (N,)) for every class with >= 3 fonts."""
    pairs, canvases = _masters()
    by_class: dict[int, list[int]] = {}
    for p, (cls, _) in enumerate(pairs):
        by_class.setdefault(cls, []).append(p)
    picks, labels = [], []
    for cls in sorted(by_class):
        ps = by_class[cls]
        if len(ps) < 3:
            continue
        picks += [ps[k % len(ps)] for k in range(per_class)]
        labels += [cls] * per_class
    picks_t = torch.tensor(picks)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 18]))
    thetas = _affine_thetas(len(picks), rng)
    src = torch.from_numpy(canvases)[picks_t][:, None]  # (N, 1, 56, 56)
    out = []
    for i in range(0, len(picks), 2048):  # in chunks, to bound memory
        grid = torch.nn.functional.affine_grid(
            thetas[i : i + 2048], [len(thetas[i : i + 2048]), 1, _CANVAS, _CANVAS], align_corners=False
        )
        warped = torch.nn.functional.grid_sample(src[i : i + 2048], grid, mode="bilinear", align_corners=False)
        out.append(torch.nn.functional.avg_pool2d(warped, 2)[:, 0])  # (n, 28, 28)
    images = (torch.cat(out).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    fonts = np.array([pairs[p][1] for p in picks], dtype=np.int64)
    return images, np.array(labels, dtype=np.int64), fonts


def _cache_path(seed: int, per_class: int) -> Path:
    import matplotlib

    cache = Path(os.environ.get("DLTERMS_CACHE", Path.home() / ".cache" / "dlterms"))
    return cache / f"glyphs-v{_VERSION}-mpl{matplotlib.__version__}-seed{seed}-n{per_class}.npz"


@functools.lru_cache(maxsize=4)
def _glyph_arrays(seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = _cache_path(seed, per_class)
    if path.exists():
        try:
            with np.load(path) as d:
                return d["images"], d["labels"], d["fonts"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is regenerated below
    arrays = _render(seed, per_class)
    try:
        from dlterms.run import atomic_write_bytes

        buf = io.BytesIO()
        np.savez_compressed(buf, images=arrays[0], labels=arrays[1], fonts=arrays[2])
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # a read-only cache directory still works, just slower
    return arrays


def glyphs(seed: int = 0, per_class: int = 20) -> GlyphSet:
    """The glyph set: `per_class` distorted 28 x 28 images of each of the 301 characters.

    Args:
        seed: draws the affine distortions (the same seed gives the same images).
        per_class: images per character (Omniglot has 20); fonts are cycled, so a character drawn by
            n fonts has about per_class / n images in each.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    images, labels, fonts = _glyph_arrays(seed, per_class)
    codes = [c for cs in ALPHABETS.values() for c in cs]
    return GlyphSet(
        torch.from_numpy(images.astype(np.float32) / 255.0)[:, None],  # (N, 1, 28, 28)
        torch.from_numpy(labels.copy()),
        torch.from_numpy(fonts.copy()),
        tuple(chr(c) for c in codes),
        tuple(a for a, cs in ALPHABETS.items() for _ in cs),
        FONTS,
    )


def alphabet_split(data: GlyphSet, test=TEST_ALPHABETS) -> tuple[GlyphSet, GlyphSet]:
    """(train, test): the classes of the alphabets not in `test`, and those of the `test` alphabets."""
    test = (test,) if isinstance(test, str) else tuple(test)
    present = data.alphabet_names()
    bad = [a for a in test if a not in present]
    if bad or not test or len(set(test)) == len(present):
        raise ValueError(
            f"test must name some but not all of the alphabets present {list(present)}, got {list(test)!r}"
        )
    return data.subset([a for a in present if a not in test]), data.subset(test)


def sample_grid(data: GlyphSet, per_alphabet: int = 10, seed: int = 0) -> tuple[torch.Tensor, tuple[str, ...]]:
    """One row per alphabet of `per_alphabet` images of different characters (drawn at random):
    an image (rows * 28, per_alphabet * 28) for `imshow`, and the row names."""
    if not isinstance(per_alphabet, int) or per_alphabet < 1:
        raise ValueError(f"per_alphabet must be a positive integer, got {per_alphabet!r}")
    g = torch.Generator().manual_seed(seed)
    rows, names = [], data.alphabet_names()
    for a in names:
        cls = data.classes_of(a)
        chosen = cls[torch.randperm(len(cls), generator=g)[:per_alphabet]]
        tiles = []
        for c in chosen.tolist():
            idx = torch.nonzero(data.labels.cpu() == c).flatten()
            tiles.append(data.images[idx[torch.randint(len(idx), (1,), generator=g)]].cpu()[0, 0])
        tiles += [torch.zeros(_SIZE, _SIZE)] * (per_alphabet - len(tiles))
        rows.append(torch.cat(tiles, dim=1))
    return torch.cat(rows, dim=0), names
