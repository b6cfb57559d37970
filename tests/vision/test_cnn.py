"""The small CNNs: shapes, parameter counts by hand, a few training steps lower the loss."""

from __future__ import annotations

import pytest
import torch

from dlterms.models.cnn import ConvNet, count_parameters, digits_cnn, mnist1d_cnn


def test_digits_cnn_shapes_and_parameters():
    m = digits_cnn(batch_norm=False)
    assert m(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    assert m.feature_shape == (32, 2, 2)
    # conv 1*16*9+16, conv 16*32*9+32, linear 128*10+10
    assert count_parameters(m) == (16 * 9 + 16) + (16 * 32 * 9 + 32) + (128 * 10 + 10)


def test_mnist1d_cnn_shapes_and_parameters():
    m = mnist1d_cnn(channels=25, batch_norm=False)
    assert m.forward_features(torch.zeros(2, 1, 40)).shape == (2, 125)  # 40 -> 20 -> 10 -> 5 positions
    assert count_parameters(m) == (25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)
    assert count_parameters(mnist1d_cnn()) == 8010 + 3 * 2 * 32  # + BN scale and shift per channel
    assert count_parameters(digits_cnn()) == 6090 + 2 * (16 + 32)


def test_global_pool_and_avg_pool_options():
    m = ConvNet(3, 4, (12, 10), channels=(5, 6), pool_type="avg", global_pool=True)
    assert m.feature_shape == (6,)
    assert m(torch.randn(2, 3, 12, 10)).shape == (2, 4)


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    m = digits_cnn()
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < 0.75 * first


def test_errors():
    with pytest.raises(ValueError, match="input_size must be"):
        ConvNet(1, 10, (8, 8, 8))
    with pytest.raises(ValueError, match="feature map shrinks"):
        ConvNet(1, 10, (4, 4), channels=(4, 4, 4), padding=0)
    with pytest.raises(ValueError, match=r"expected input \(B, 1, 8, 8\)"):
        digits_cnn()(torch.zeros(1, 1, 9, 8))
    with pytest.raises(ValueError, match="dropout must be in"):
        ConvNet(1, 10, (8, 8), dropout=1.0)
    with pytest.raises(ValueError, match="pool_type"):
        ConvNet(1, 10, (8, 8), pool_type="median")


def test_count_macs_by_hand():
    from dlterms.models.cnn import count_macs

    m = digits_cnn(batch_norm=False)
    macs = count_macs(m, torch.zeros(2, 1, 8, 8))
    # conv1: 8*8 positions * 16 * 1 * 9; conv2: 4*4 * 32 * 16 * 9; head 128 * 10; times batch 2
    assert macs == {"features.0": 2 * 64 * 16 * 9, "features.3": 2 * 16 * 32 * 16 * 9, "head": 2 * 1280}
