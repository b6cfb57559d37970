"""Bundled photos load offline as [0, 1] tensors; translate shifts with zero fill."""

from __future__ import annotations

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.data.images import PHOTOS, photo, rgb_to_grey, translate


@pytest.mark.parametrize("name", PHOTOS)
def test_every_photo_is_bundled(name):
    x = photo(name, size=32)
    assert x.dtype == torch.float32 and x.shape[1:] == (32, 32) and x.shape[0] in (1, 3)
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.01


def test_grey_and_original_size():
    assert photo("camera").shape == (1, 512, 512)
    a = photo("astronaut", grey=True)
    assert a.shape == (1, 512, 512)
    from skimage.color import rgb2gray
    from skimage.data import astronaut

    # float32 rule: a weighted sum of 3 channels, scaled to [0, 1]
    assert_close_f32(a[0], torch.from_numpy(rgb2gray(astronaut())).float(), n=3 + 2)
    with pytest.raises(ValueError, match="unknown photo 'lena'"):
        photo("lena")
    with pytest.raises(ValueError, match="3 colour channels"):
        rgb_to_grey(torch.zeros(2, 8, 8))


def test_translate_matches_roll_with_zero_fill():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    y = translate(x, 2, -1)
    ref = torch.roll(x, (2, -1), (2, 3))
    ref[:, :, :2] = 0
    ref[:, :, :, -1:] = 0
    assert torch.equal(y, ref)
    per = translate(x, torch.tensor([0, 1]), torch.tensor([1, 0]))
    assert torch.equal(per[0], translate(x[:1], 0, 1)[0]) and torch.equal(per[1], translate(x[1:], 1, 0)[0])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        translate(torch.zeros(3, 4, 4), 1, 1)
