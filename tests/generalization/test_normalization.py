"""dlterms.nn BatchNorm1d/2d and LayerNorm against torch: outputs, running statistics, gradients (1e-5)."""

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn import BatchNorm1d, BatchNorm2d, LayerNorm


def _n(shape) -> int:
    """Roundings behind one value: the mean and then the variance over the largest group a statistic or
    a parameter gradient sums (N*L per channel for BatchNorm, rows or features for LayerNorm)."""
    numel = torch.Size(shape).numel()
    return 2 * max(numel // shape[1], shape[-1], numel // shape[-1])


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
    """Several training batches then eval: outputs, input and parameter gradients, running stats, within the
    float32 rule (tests/_tolerance.py) for the sums of each shape."""
    g = torch.Generator().manual_seed(1)
    for shape in shapes:
        n = _n(shape)
        x = torch.randn(shape, generator=g) * scale + shift
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        w = torch.randn(shape, generator=g)  # random upstream gradient
        yo, yr = ours(xo), ref(xr)
        assert_close_f32(yo, yr, n=n)
        (yo * w).sum().backward()
        (yr * w).sum().backward()
        assert_close_f32(xo.grad, xr.grad, n=n)
        for p_o, p_r in zip(ours.parameters(), ref.parameters(), strict=True):
            assert_close_f32(p_o.grad, p_r.grad, n=n)
        for name, b_r in ref.named_buffers():
            assert_close_f32(dict(ours.named_buffers())[name], b_r, n=n)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm1d_train_and_eval(momentum, affine):
    ours, ref = _pair(BatchNorm1d, torch.nn.BatchNorm1d, 6, momentum=momentum, affine=affine)
    _compare_steps(ours, ref, [(32, 6), (17, 6), (5, 6)])
    ours.eval(), ref.eval()
    x = torch.randn(9, 6) * 2 + 1
    assert_close_f32(ours(x), ref(x), n=4)  # eval: (x - mean) / sqrt(var + eps) * gamma + beta per element


def test_batchnorm1d_3d_input():
    ours, ref = _pair(BatchNorm1d, torch.nn.BatchNorm1d, 4)
    _compare_steps(ours, ref, [(8, 4, 11), (3, 4, 7)])
    ours.eval(), ref.eval()
    x = torch.randn(2, 4, 5)
    assert_close_f32(ours(x), ref(x), n=4)


@pytest.mark.parametrize("track", [True, False])
def test_batchnorm2d(track):
    ours, ref = _pair(BatchNorm2d, torch.nn.BatchNorm2d, 3, momentum=0.2, track_running_stats=track)
    _compare_steps(ours, ref, [(8, 3, 5, 5), (4, 3, 6, 2)])
    ours.eval(), ref.eval()
    x = torch.randn(5, 3, 4, 4)
    assert_close_f32(ours(x), ref(x), n=4)


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
    assert_close_f32(ours(x), ref(x), n=4)


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


# --- the hand-written backwards (_BatchNormTrain, _LayerNormRows) -------------------------------------------------

from dlterms.nn.normalization import _BatchNormTrain, _LayerNormRows  # noqa: E402


def _bn_y(x, w, b):
    return _BatchNormTrain.apply(x, w, b, 1e-5)[0]


def _ln_y(x, w, b):
    return _LayerNormRows.apply(x, w, b, 1e-5)


def _f64(*shape, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * 2 + shift).requires_grad_()


@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize(
    "fn,shape,channels", [(_bn_y, (5, 3, 4), 3), (_bn_y, (6, 4, 1), 4), (_ln_y, (4, 7), 7), (_ln_y, (1, 5), 5)]
)
def test_closed_form_backward_passes_gradcheck(fn, shape, channels, affine):
    """Finite differences in float64 agree with the closed-form backward (and, through create_graph, with the
    autograd fallback for second derivatives), for every combination of gamma and beta."""
    x = _f64(*shape, shift=1.5)
    w = _f64(channels, seed=1) if affine in ("both", "weight") else None
    b = _f64(channels, seed=2) if affine in ("both", "bias") else None
    inputs = (x, w, b)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    assert torch.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("shape", [(1, 768), (1, 3, 8), (311, 768)])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_backward_matches_torch_including_batch_of_one(shape, affine):
    ours, ref = _pair(LayerNorm, torch.nn.LayerNorm, shape[-1], elementwise_affine=affine)
    # gamma's and beta's gradients sum up to 311 float32 products, summed in a different order than torch's
    _compare_steps(ours, ref, [shape])


@pytest.mark.parametrize(
    "cls,ref_cls,shape",
    [
        (BatchNorm1d, torch.nn.BatchNorm1d, (64, 256)),
        (BatchNorm1d, torch.nn.BatchNorm1d, (2, 5, 3)),
        (BatchNorm2d, torch.nn.BatchNorm2d, (64, 16, 8, 8)),
    ],
)
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_backward_matches_torch_train_then_eval(cls, ref_cls, shape, affine):
    ours, ref = _pair(cls, ref_cls, shape[1], affine=affine)
    # gamma's and beta's gradients sum up to 4096 float32 products
    _compare_steps(ours, ref, [shape, shape])
    ours.eval(), ref.eval()  # eval: the running statistics are constants, gradients still flow to x and gamma
    for p in [*ours.parameters(), *ref.parameters()]:
        p.grad = None
    _compare_steps(ours, ref, [shape])


def test_normalization_backward_far_from_zero_mean():
    """The backward writes dl/dx as r (gamma g + p x + q), as torch's kernel does; with mean 1e3 and std 2 it
    still matches torch's gradients in float32 within the float32 rule, where centring x costs a factor
    |mean| / std = 500 of float32's relative precision (float64 is exact, gradcheck above)."""
    for ours, ref, shape in [
        (*_pair(LayerNorm, torch.nn.LayerNorm, 32), (16, 32)),
        (*_pair(BatchNorm1d, torch.nn.BatchNorm1d, 8), (64, 8)),
    ]:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(3)) * 2 + 1e3
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        g = torch.randn(shape, generator=torch.Generator().manual_seed(4))
        (ours(xo) * g).sum().backward()
        (ref(xr) * g).sum().backward()
        assert_close_f32(xo.grad, xr.grad, n=1, scale=xr.grad.abs().max().item() * 1e3 / 2)


def test_backward_twice_with_retain_graph_and_only_parameter_gradients():
    """The saved tensors are not overwritten: a second backward gives the same gradients; and an input that
    does not require a gradient gets none while gamma and beta still do."""
    for m, shape in [(LayerNorm(6), (4, 6)), (BatchNorm2d(3), (4, 3, 2, 2))]:
        x = torch.randn(shape).requires_grad_()
        y = (m(x) * torch.randn(shape)).sum()
        (gx1,) = torch.autograd.grad(y, x, retain_graph=True)
        (gx2,) = torch.autograd.grad(y, x)
        torch.testing.assert_close(gx1, gx2, rtol=0, atol=0)
        x = torch.randn(shape)
        m.zero_grad()
        m(x).square().sum().backward()
        assert m.weight.grad is not None and m.bias.grad is not None and x.grad is None


def test_second_derivative_through_the_modules_matches_torch():
    """create_graph=True (Hessians, gradient penalties) goes through autograd of the equations."""
    for ours, ref, shape in [
        (*_pair(LayerNorm, torch.nn.LayerNorm, 5), (3, 5)),
        (*_pair(BatchNorm1d, torch.nn.BatchNorm1d, 4), (6, 4)),
    ]:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(5))
        out = []
        for m in (ours, ref):
            xi = x.clone().requires_grad_()
            (gx,) = torch.autograd.grad(m(xi).tanh().sum(), xi, create_graph=True)
            (gw,) = torch.autograd.grad(gx.square().sum(), m.weight)
            out.append((gx.detach(), gw))
        assert_close_f32(out[0][0], out[1][0], n=4 * _n(shape))  # LN or BN, then tanh and its backward
        assert_close_f32(out[0][1], out[1][1], n=8 * _n(shape))  # and the backward of that backward


@pytest.mark.parametrize(
    "cls,ref_cls,shape", [(BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)), (LayerNorm, torch.nn.LayerNorm, (6, 3))]
)
def test_float32_layer_on_float64_input_promotes_as_before(cls, ref_cls, shape):
    """A float32 layer on float64 input computes in float64 (as the equations did under type promotion) and
    keeps float32 running statistics and parameter gradients."""
    ours, ref = _pair(cls, ref_cls, 3)
    ref.double()
    x = torch.randn(shape, dtype=torch.float64)
    xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(shape, dtype=torch.float64)
    (ours(xo) * g).sum().backward()
    (ref(xr) * g).sum().backward()
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-6, atol=1e-6)
    assert ours.weight.grad.dtype == torch.float32
    assert_close_f32(ours.weight.grad, ref.weight.grad.float(), n=1)  # float64 sums, rounded once to float32
    if cls is BatchNorm1d:
        assert ours.running_var.dtype == torch.float32
        assert_close_f32(ours.running_var, ref.running_var.float(), n=2)


def test_torch_func_transforms_run_through_the_equations():
    """vmap(grad(...)) per-example gradients and torch.func.jacfwd (forward mode) through LayerNorm, and through
    batch statistics, agree with torch's layers."""
    from torch.func import functional_call, grad, jacfwd, vmap

    for (ours, ref), x in [
        (_pair(LayerNorm, torch.nn.LayerNorm, 6), torch.randn(5, 4, 6, dtype=torch.float64)),
        (
            _pair(BatchNorm1d, torch.nn.BatchNorm1d, 4, track_running_stats=False),
            torch.randn(5, 3, 4, dtype=torch.float64),
        ),
    ]:  # vmapped over 5 batches of 3
        ours.double(), ref.double()
        per = []
        for m in (ours, ref):
            params = {k: v.detach() for k, v in m.named_parameters()}

            def loss(p, xi, m=m):
                return functional_call(m, p, (xi,)).tanh().sum()

            per.append(vmap(grad(loss), in_dims=(None, 0))(params, x))
        for k in per[0]:
            torch.testing.assert_close(per[0][k], per[1][k], atol=1e-10, rtol=1e-10)
        j = [jacfwd(lambda xx, m=m: m(xx).tanh().sum(-1))(x[0]) for m in (ours, ref)]
        torch.testing.assert_close(j[0], j[1], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize(
    "cls,ref_cls,make",
    [
        (LayerNorm, torch.nn.LayerNorm, lambda: torch.randn(8, 5).t()),  # column-major rows
        (LayerNorm, torch.nn.LayerNorm, lambda: torch.randn(5, 3, 12)[..., 2:10]),  # strided rows
        (LayerNorm, torch.nn.LayerNorm, lambda: torch.randn(3, 5, 8).transpose(0, 1)),
        (BatchNorm1d, torch.nn.BatchNorm1d, lambda: torch.randn(8, 7).t()),
        (BatchNorm2d, torch.nn.BatchNorm2d, lambda: torch.randn(3, 8, 5, 6).to(memory_format=torch.channels_last)),
    ],
)
def test_non_contiguous_inputs_match_torch(cls, ref_cls, make):
    """The Functions run on (M, H) or (B, C, L) views: transposed, sliced and channels-last inputs still match."""
    torch.manual_seed(11)
    x = make()
    ours, ref = _pair(cls, ref_cls, x.shape[-1] if cls is LayerNorm else x.shape[1])
    xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(x.shape)
    yo, yr = ours(xo), ref(xr)
    n = _n(x.shape)
    assert_close_f32(yo, yr, n=n)
    (yo * g).sum().backward()
    (yr * g).sum().backward()
    assert_close_f32(xo.grad, xr.grad, n=n)
    assert_close_f32(ours.weight.grad, ref.weight.grad, n=n)
