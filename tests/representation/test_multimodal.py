"""Early and late fusion: shapes, the late-fusion formulas, and the two-modality data."""

from __future__ import annotations

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.data.toy import two_modalities
from dlterms.models.multimodal import EarlyFusion, LateFusion, UnimodalClassifier


def test_late_fusion_formulas():
    torch.manual_seed(0)
    ua, ub = UnimodalClassifier(3, 4, modality=0), UnimodalClassifier(5, 4, modality=1)
    xa, xb = torch.randn(6, 3), torch.randn(6, 5)
    pa, pb = torch.softmax(ua(xa, xb), 1), torch.softmax(ub(xa, xb), 1)
    prod = LateFusion(ua, ub, "product")(xa, xb).exp()
    # two classifiers' log-softmax over 4 classes, combined, normalised (a sum of 4) and exponentiated
    assert_close_f32(prod, pa * pb / (pa * pb).sum(1, keepdim=True), n=2 * (4 + 4) + 4)
    assert_close_f32(LateFusion(ua, ub, "mean")(xa, xb).exp(), (pa + pb) / 2, n=2 * (4 + 4) + 4)


def test_early_fusion_shapes_and_errors():
    m = EarlyFusion(3, 5, 2)
    assert m(torch.randn(4, 3), torch.randn(4, 5)).shape == (4, 2)
    with pytest.raises(ValueError, match="expected inputs with 3 and 5 features"):
        m(torch.randn(4, 5), torch.randn(4, 3))
    with pytest.raises(ValueError, match="mode must be 'product' or 'mean'"):
        LateFusion(m, m, "max")
    with pytest.raises(ValueError, match="modality must be 0 or 1"):
        UnimodalClassifier(3, 2, modality=2)


def test_two_modalities_labels():
    g = torch.Generator().manual_seed(0)
    xa, xb, y = two_modalities(1000, 4, 6, noise=0.0, generator=g)
    assert xa.shape == (1000, 4) and xb.shape == (1000, 6) and set(y.tolist()) == {0, 1, 2, 3}
    # noise-free: each modality takes exactly two values, one per bit
    assert len(torch.unique(xa, dim=0)) == 2 and len(torch.unique(xb, dim=0)) == 2
    _, _, yx = two_modalities(100, interaction=True, generator=g)
    assert set(yx.tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="noise must be >= 0"):
        two_modalities(10, noise=-1)


def test_modality_dropout_blanks_at_most_one_modality_at_rate_p():
    from dlterms.models.multimodal import modality_dropout

    xa, xb = torch.ones(20000, 3), torch.full((20000, 5), 2.0)
    a, b = modality_dropout(xa, xb, 0.3, generator=torch.Generator().manual_seed(0))
    gone_a, gone_b = (a == 0).all(1), (b == 0).all(1)
    assert not (gone_a & gone_b).any()  # never both
    assert ((a == 1).all(1) | gone_a).all() and ((b == 2).all(1) | gone_b).all()  # kept rows untouched
    n = 20000
    for rate in (gone_a.float().mean(), gone_b.float().mean()):  # each modality blanked with prob p/2
        assert abs(rate.item() - 0.15) < 5 * (0.15 * 0.85 / n) ** 0.5
    a0, b0 = modality_dropout(xa, xb, 0.0)
    assert torch.equal(a0, xa) and torch.equal(b0, xb)
    with pytest.raises(ValueError, match="p must be in"):
        modality_dropout(xa, xb, 1.5)
    with pytest.raises(ValueError, match="same batch size"):
        modality_dropout(xa, xb[:3], 0.5)
