"""Scalers against scikit-learn's StandardScaler and MinMaxScaler; per-channel standardisation."""

import numpy as np
import pytest
import torch
from sklearn import preprocessing

from _tolerance import assert_close_f32
from dlterms.data.scalers import ChannelStandardScaler, MinMaxScaler, StandardScaler


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(50, 6)) * np.array([1e-3, 1, 10, 1e3, 5, 1]) + np.array([0, 5, -3, 1e4, 0, 2])
    x[:, 5] = 7.0  # a constant feature
    return x, rng.normal(size=(20, 6)) * 100


@pytest.mark.parametrize("with_mean,with_std", [(True, True), (False, True), (True, False)])
def test_standard_matches_sklearn(with_mean, with_std):
    xtr, xte = _data()
    ours = StandardScaler(with_mean, with_std).fit(xtr)
    ref = preprocessing.StandardScaler(with_mean=with_mean, with_std=with_std).fit(xtr)
    np.testing.assert_allclose(ours.transform(xte), ref.transform(xte), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(xte)), xte, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(ours.mean_.numpy(), ref.mean_, rtol=1e-12)


@pytest.mark.parametrize("feature_range", [(0, 1), (-1, 1), (2, 5)])
def test_minmax_matches_sklearn(feature_range):
    xtr, xte = _data()
    ours = MinMaxScaler(feature_range).fit(xtr)
    ref = preprocessing.MinMaxScaler(feature_range=feature_range).fit(xtr)
    np.testing.assert_allclose(ours.transform(xte), ref.transform(xte), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.transform(xtr), ref.transform(xtr), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(xte)), xte, rtol=1e-10, atol=1e-8)
    clipped = MinMaxScaler(feature_range, clip=True).fit(xtr).transform(xte)
    np.testing.assert_allclose(
        clipped,
        preprocessing.MinMaxScaler(feature_range=feature_range, clip=True).fit(xtr).transform(xte),
        rtol=1e-10,
        atol=1e-10,
    )


def test_torch_input_keeps_type_dtype_and_fits_on_train_only():
    xtr, xte = _data()
    s = StandardScaler().fit(torch.tensor(xtr, dtype=torch.float32))
    out = s.transform(torch.tensor(xte, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    ref = preprocessing.StandardScaler().fit(xtr).transform(xte)
    # (x - mean) / std per element: float32 keeps |x| + |mean| to eps, the division by std scales it;
    # the mean and std are sums over 50 rows
    scale = (np.abs(xte) + np.abs(xtr.mean(0))) / preprocessing.StandardScaler().fit(xtr).scale_
    assert_close_f32(out, ref, n=2 * 50, scale=scale)
    # the test set is not standardised by its own statistics: its mean is not 0
    assert abs(out[:, 1].mean().item()) > 0.5


def test_channel_scaler_per_channel_mean_and_std():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, 5, 5, generator=g) * torch.tensor([1.0, 10.0, 0.1]).view(1, 3, 1, 1) + 4
    y = ChannelStandardScaler().fit_transform(x)
    # sums of 1000 values per channel, each known to eps * (|x| + |mean|) / std (channel 3: mean 4, std 0.1)
    dims = (0, 2, 3)
    scale = (x.abs().amax(dim=dims) + x.mean(dim=dims).abs()) / x.std(dim=dims)
    assert_close_f32(y.mean(dim=dims), torch.zeros(3), n=2 * 1000, scale=scale)
    assert_close_f32(y.std(dim=dims, unbiased=False), torch.ones(3), n=2 * 1000, scale=scale)
    # equals sklearn's StandardScaler on the channel values flattened to one column per channel
    flat = x.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    ref = preprocessing.StandardScaler().fit_transform(flat)
    per_value = (np.abs(flat) + np.abs(flat.mean(0))) / flat.std(0)
    assert_close_f32(y.permute(0, 2, 3, 1).reshape(-1, 3), ref, n=2 * 1000, scale=per_value)


def test_errors():
    with pytest.raises(ValueError, match="not fitted yet"):
        StandardScaler().transform(np.ones((3, 2)))
    with pytest.raises(ValueError, match="not fitted yet"):
        MinMaxScaler().inverse_transform(np.ones((3, 2)))
    with pytest.raises(ValueError, match="x has 3 features, but StandardScaler was fitted on 2"):
        StandardScaler().fit(np.ones((3, 2))).transform(np.ones((3, 3)))
    with pytest.raises(ValueError, match="expects 2-D input"):
        MinMaxScaler().fit(np.ones(3))
    with pytest.raises(ValueError, match="feature_range must be"):
        MinMaxScaler((1, 0))
    with pytest.raises(ValueError, match=r"\(B, C, L\)"):
        ChannelStandardScaler().fit(torch.ones(3, 2))
    with pytest.raises(ValueError, match="NumPy array or a torch tensor"):
        StandardScaler().fit([[1.0, 2.0]])
