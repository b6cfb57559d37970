"""dlterms.nn BatchNorm1d/2d and LayerNorm against torch: outputs, running statistics, gradients (1e-5)."""

import pytest
import torch

from dlterms.nn import BatchNorm1d, BatchNorm2d, LayerNorm

TOL = dict(rtol=1e-5, atol=1e-5)


def _pair(ours_cls, ref_cls, *args, **kw):
    torch.manual_seed(0)
    ours, ref = ours_cls(*args, **kw), ref_cls(*args, **kw)
    with torch.no_grad():  # non-trivial affine parameters
        for p_o, p_r in zip(ours.parameters(), ref.parameters(), strict=True):
            v = torch.randn_like(p_o)
            p_o.copy_(v)
            p_r.copy_(v)
    return ours, ref


def _compare_steps(ours, ref, shapes, scale=3.0, shift=1.5):
    """Several training batches then eval: outputs, input and parameter gradients, running stats."""
    g = torch.Generator().manual_seed(1)
    for shape in shapes:
        x = torch.randn(shape, generator=g) * scale + shift
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        w = torch.randn(shape, generator=g)  # random upstream gradient
        yo, yr = ours(xo), ref(xr)
        torch.testing.assert_close(yo, yr, **TOL)
        (yo * w).sum().backward()
        (yr * w).sum().backward()
        torch.testing.assert_close(xo.grad, xr.grad, **TOL)
        for p_o, p_r in zip(ours.parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p_o.grad, p_r.grad, **TOL)
        for name, b_r in ref.named_buffers():
            torch.testing.assert_close(dict(ours.named_buffers())[name], b_r, **TOL)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm1d_train_and_eval(momentum, affine):
    ours, ref = _pair(BatchNorm1d, torch.nn.BatchNorm1d, 6, momentum=momentum, affine=affine)
    _compare_steps(ours, ref, [(32, 6), (17, 6), (5, 6)])
    ours.eval(), ref.eval()
    x = torch.randn(9, 6) * 2 + 1
    torch.testing.assert_close(ours(x), ref(x), **TOL)


def test_batchnorm1d_3d_input():
    ours, ref = _pair(BatchNorm1d, torch.nn.BatchNorm1d, 4)
    _compare_steps(ours, ref, [(8, 4, 11), (3, 4, 7)])
    ours.eval(), ref.eval()
    x = torch.randn(2, 4, 5)
    torch.testing.assert_close(ours(x), ref(x), **TOL)


@pytest.mark.parametrize("track", [True, False])
def test_batchnorm2d(track):
    ours, ref = _pair(BatchNorm2d, torch.nn.BatchNorm2d, 3, momentum=0.2, track_running_stats=track)
    _compare_steps(ours, ref, [(8, 3, 5, 5), (4, 3, 6, 2)])
    ours.eval(), ref.eval()
    x = torch.randn(5, 3, 4, 4)
    torch.testing.assert_close(ours(x), ref(x), **TOL)


def test_running_var_is_unbiased_ema():
    bn = BatchNorm1d(1, momentum=1.0)  # running stats = last batch's
    x = torch.tensor([[1.0], [2.0], [6.0]])
    bn(x)
    assert bn.running_mean.item() == pytest.approx(3.0)
    assert bn.running_var.item() == pytest.approx(7.0)  # sum of squares 14 / (3 - 1)
    assert bn.num_batches_tracked.item() == 1


def test_state_dict_interchangeable_with_torch():
    ref = torch.nn.BatchNorm2d(3)
    ref(torch.randn(6, 3, 4, 4) * 2 + 1)
    ours = BatchNorm2d(3)
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(ours(x), ref(x), **TOL)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="num_features must be a positive integer"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum must be in"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps must be > 0"):
        BatchNorm2d(3, eps=0)
    with pytest.raises(ValueError, match="expects a 4-D input"):
        BatchNorm2d(3)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="got 5 channels"):
        BatchNorm1d(3)(torch.randn(4, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3).train()(torch.randn(1, 3))
    assert "momentum=0.1" in repr(BatchNorm1d(3))


@pytest.mark.parametrize("shape,normalized", [((4, 10), 10), ((2, 5, 8), (8,)), ((3, 4, 6, 7), (6, 7))])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_matches_torch(shape, normalized, affine):
    ours, ref = _pair(LayerNorm, torch.nn.LayerNorm, normalized, elementwise_affine=affine)
    for mode in ("train", "eval"):
        getattr(ours, mode)(), getattr(ref, mode)()
        _compare_steps(ours, ref, [shape])
        for p in [*ours.parameters(), *ref.parameters()]:
            p.grad = None


def test_layernorm_without_bias_and_errors():
    ours, ref = _pair(LayerNorm, torch.nn.LayerNorm, 6, bias=False)
    assert ours.bias is None
    _compare_steps(ours, ref, [(3, 6)])
    with pytest.raises(ValueError, match="normalized_shape must be"):
        LayerNorm(0)
    with pytest.raises(ValueError, match="last dimensions are"):
        LayerNorm(6)(torch.randn(3, 5))
