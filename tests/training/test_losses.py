"""Our losses equal torch.nn.functional's, in value and in gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms import losses

TOL = 1e-6  # float64
# float32 (the experiments' size, B = 128 and C = 10): the rule of tests/_tolerance.py, for a log-softmax
# over 10 classes and the mean over 128 examples
N_CE32 = 10 + 128 + 8


def _pair(ours_fn, ref_fn, *inputs):
    """Values and gradients (w.r.t. the first input) of both functions."""
    a = inputs[0].detach().clone().requires_grad_(True)
    b = inputs[0].detach().clone().requires_grad_(True)
    va, vb = ours_fn(a, *inputs[1:]), ref_fn(b, *inputs[1:])
    va.sum().backward()
    vb.sum().backward()
    return va.detach(), vb.detach(), a.grad, b.grad


def _close(ours, ref, tol=TOL):
    assert ours.shape == ref.shape
    if ours.dtype == torch.float32:
        assert_close_f32(ours, ref, n=N_CE32)
    else:
        assert torch.allclose(ours, ref, atol=tol, rtol=tol), (ours - ref).abs().max()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "name,kw",
    [
        ("mse_loss", {}),
        ("l1_loss", {}),
        ("huber_loss", {}),
        ("huber_loss", {"delta": 0.3}),
        ("huber_loss", {"delta": 2.5}),
    ],
)
def test_regression_losses_match_torch(name, kw, reduction):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64) * 2
    y = torch.randn(7, 3, generator=g, dtype=torch.float64)
    va, vb, ga, gb = _pair(
        lambda a, b: getattr(losses, name)(a, b, reduction=reduction, **kw),
        lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kw),
        x,
        y,
    )
    _close(va, vb)
    _close(ga, gb)


def test_huber_hand_worked():
    r = torch.tensor([0.5, -2.0])
    # 0.5 * 0.25 = 0.125 ; 1 * (2 - 0.5) = 1.5
    assert torch.allclose(losses.huber_loss(r, torch.zeros(2), reduction="none"), torch.tensor([0.125, 1.5]))


def test_hinge_matches_formula_and_sklearn():
    from sklearn.metrics import hinge_loss as sk_hinge

    g = torch.Generator().manual_seed(1)
    s = torch.randn(50, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (50,), generator=g).double() * 2 - 1
    ours = losses.hinge_loss(s, y)
    assert abs(ours.item() - sk_hinge(y.numpy(), s.numpy())) < 1e-12
    # hand-worked: y=+1, s=0.3 -> 0.7; y=-1, s=-2 -> 0; y=+1, s=-1 -> 2
    hw = losses.hinge_loss(torch.tensor([0.3, -2.0, -1.0]), torch.tensor([1.0, -1.0, 1.0]), reduction="none")
    assert torch.allclose(hw, torch.tensor([0.7, 0.0, 2.0]))
    with pytest.raises(ValueError, match="must be -1 or \\+1"):
        losses.hinge_loss(s, (y > 0).double())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multi_margin_matches_torch(reduction):
    g = torch.Generator().manual_seed(2)
    x, t = torch.randn(9, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (9,), generator=g)
    va, vb, ga, gb = _pair(
        lambda a, b: losses.multi_margin_loss(a, b, margin=0.7, reduction=reduction),
        lambda a, b: F.multi_margin_loss(a, b, margin=0.7, reduction=reduction),
        x,
        t,
    )
    _close(va, vb)
    _close(ga, gb)


def test_log_softmax_matches_torch_and_is_stable():
    z = torch.tensor([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    _close(losses.log_softmax(z, 1), F.log_softmax(z, 1))
    assert torch.isfinite(losses.log_softmax(z, 1)).all()


CE_CASES = [
    dict(),
    dict(label_smoothing=0.1),
    dict(weight=True),
    dict(weight=True, label_smoothing=0.2),
    dict(ignore_index=2),
    dict(ignore_index=2, weight=True, label_smoothing=0.3),
    dict(ignore_index=-100, label_smoothing=1.0),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", CE_CASES)
@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 3), (5,)])
def test_cross_entropy_class_targets_match_torch(kw, reduction, shape):
    g = torch.Generator().manual_seed(3)
    kw = dict(kw)
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(5, generator=g, dtype=torch.float64) + 0.1
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    t = torch.randint(0, 5, tshape, generator=g)
    if len(shape) > 1:
        t.view(-1)[0] = 2  # so ignore_index=2 has something to ignore
    va, vb, ga, gb = _pair(
        lambda a, b: losses.cross_entropy(a, b, reduction=reduction, **kw),
        lambda a, b: F.cross_entropy(a, b, reduction=reduction, **kw),
        x,
        t,
    )
    _close(va, vb)
    _close(ga, gb)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", [dict(), dict(label_smoothing=0.25), dict(weight=True)])
def test_cross_entropy_probability_targets_match_torch(kw, reduction):
    g = torch.Generator().manual_seed(4)
    kw = dict(kw)
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(6, generator=g, dtype=torch.float64) + 0.1
    x = torch.randn(10, 6, generator=g, dtype=torch.float64)
    p = torch.softmax(torch.randn(10, 6, generator=g, dtype=torch.float64), 1)
    va, vb, ga, gb = _pair(
        lambda a, b: losses.cross_entropy(a, b, reduction=reduction, **kw),
        lambda a, b: F.cross_entropy(a, b, reduction=reduction, **kw),
        x,
        p,
    )
    _close(va, vb)
    _close(ga, gb)


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    z = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    losses.cross_entropy(z, y, reduction="sum").backward()
    assert torch.allclose(z.grad, torch.softmax(z.detach(), 1) - F.one_hot(y, 4).double(), atol=1e-12)


def test_cross_entropy_stable_for_huge_logits():
    z = torch.tensor([[1000.0, -1000.0], [-1000.0, 1000.0]], requires_grad=True)
    loss = losses.cross_entropy(z, torch.tensor([1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    assert abs(loss.item() - 1000.0) < 1e-3  # (2000 + 0) / 2


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", [dict(), dict(pos_weight=True), dict(weight=True)])
def test_bce_with_logits_matches_torch(kw, reduction):
    g = torch.Generator().manual_seed(5)
    kw = dict(kw)
    if kw.pop("pos_weight", False):
        kw["pos_weight"] = torch.rand(3, generator=g, dtype=torch.float64) * 3
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(3, generator=g, dtype=torch.float64)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64) * 30  # large logits too
    y = torch.rand(8, 3, generator=g, dtype=torch.float64)
    ours, ref = losses.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits
    va, vb, ga, gb = _pair(
        lambda a, b: ours(a, b, reduction=reduction, **kw), lambda a, b: ref(a, b, reduction=reduction, **kw), x, y
    )
    _close(va, vb)
    _close(ga, gb)


def test_bce_with_logits_at_zero_has_the_right_first_and_second_derivative():
    """At x = 0 exactly (e.g. zero-initialised weights): dl/dx = sigmoid(0) - y, d2l/dx2 = 1/4."""
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.3], dtype=torch.float64)
    (g,) = torch.autograd.grad(losses.binary_cross_entropy_with_logits(x, y, reduction="sum"), x, create_graph=True)
    assert torch.allclose(g, 0.5 - y, atol=1e-12)
    (h,) = torch.autograd.grad(g.sum(), x)
    assert torch.allclose(h, torch.full((3,), 0.25, dtype=torch.float64), atol=1e-12)


def test_modules_match_functions():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    w = torch.tensor([1.0, 2.0, 0.5])
    m = losses.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    # float32 rule: softmax over 3 classes and a (weighted) mean over 4 examples, or a sum of 12 values
    assert_close_f32(m(x, y), torch.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)(x, y), n=3 + 2 * 4 + 8)
    assert "label_smoothing=0.1" in repr(m)
    assert_close_f32(losses.MSELoss()(x, x * 2), F.mse_loss(x, x * 2), n=12 + 2)
    assert_close_f32(losses.HuberLoss(delta=0.5)(x, -x), F.huber_loss(x, -x, delta=0.5), n=12 + 4)
    assert_close_f32(losses.L1Loss(reduction="sum")(x, -x), F.l1_loss(x, -x, reduction="sum"), n=12 + 1)


def test_bad_arguments_raise():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    with pytest.raises(ValueError, match="reduction must be one of .* got 'avg'"):
        losses.cross_entropy(x, y, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\], got 1.5"):
        losses.cross_entropy(x, y, label_smoothing=1.5)
    with pytest.raises(ValueError, match="weight must have shape \\(3,\\)"):
        losses.cross_entropy(x, y, weight=torch.ones(4))
    with pytest.raises(ValueError, match="delta must be > 0, got 0"):
        losses.huber_loss(x, x, delta=0)
    with pytest.raises(ValueError, match="same shape"):
        losses.mse_loss(x, x[:2])


def test_cross_entropy_ignores_targets_whose_logits_are_minus_inf():
    """A decoder masks impossible tokens with -inf; ignored positions must not turn the loss into NaN."""
    import torch
    import torch.nn.functional as F

    from dlterms.losses import cross_entropy

    masked = torch.randn(4, 5)
    masked[1, 0] = float("-inf")
    masked.requires_grad_(True)
    target = torch.tensor([2, -100, 4, 1])
    ours = cross_entropy(masked, target)
    ref = F.cross_entropy(masked, target)
    assert_close_f32(ours, ref, n=5 + 3 + 4)  # log-softmax over 5, the mean over the 3 kept targets
    (g_ours,) = torch.autograd.grad(ours, masked)
    (g_ref,) = torch.autograd.grad(ref, masked)
    assert_close_f32(g_ours, g_ref, n=5 + 3 + 4)


# --- the closed-form backward of class-index cross-entropy (_CrossEntropyIndex) ---------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", CE_CASES)
def test_cross_entropy_closed_form_backward_passes_gradcheck(kw, reduction):
    """Finite differences in float64 agree with (q sum_j t_j - t) and, through create_graph, the second
    derivatives (autograd of the equations) agree too."""
    from dlterms.losses import _CrossEntropyIndex

    g = torch.Generator().manual_seed(7)
    kw = dict(kw)
    w = torch.rand(5, generator=g, dtype=torch.float64) + 0.1 if kw.pop("weight", False) else None
    z = (torch.randn(6, 5, generator=g, dtype=torch.float64) * 2).requires_grad_()
    y = torch.tensor([2, 0, 4, 2, 1, 3])

    def fn(z):
        return _CrossEntropyIndex.apply(
            z, y, w, kw.get("ignore_index", -100), reduction, kw.get("label_smoothing", 0.0)
        )

    assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-7, rtol=1e-5)
    assert torch.autograd.gradgradcheck(fn, (z,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("kw", [dict(), dict(label_smoothing=0.1), dict(weight=True, ignore_index=1)])
def test_cross_entropy_float32_experiment_size_and_hessian_match_torch(kw):
    """B=128, C=10 in float32 (the experiments' size) within the float32 rule; and the Hessian d^2 l / dz^2
    that Newton's method builds with create_graph=True matches torch's to 1e-10 in float64."""
    g = torch.Generator().manual_seed(8)
    kw = dict(kw)
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(10, generator=g) + 0.1
    z = torch.randn(128, 10, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)
    va, vb, ga, gb = _pair(
        lambda a, b: losses.cross_entropy(a, b, **kw), lambda a, b: F.cross_entropy(a, b, **kw), z, y
    )
    _close(va, vb)
    _close(ga, gb)
    if "weight" in kw:
        kw["weight"] = kw["weight"].double()
    z64 = z[:4].double().requires_grad_()
    hessians = []
    for fn in (losses.cross_entropy, F.cross_entropy):
        (gz,) = torch.autograd.grad(fn(z64, y[:4], **kw), z64, create_graph=True)
        hessians.append(
            torch.stack([torch.autograd.grad(gz.reshape(-1)[i], z64, retain_graph=True)[0] for i in range(gz.numel())])
        )
    torch.testing.assert_close(hessians[0], hessians[1], atol=1e-10, rtol=1e-10)


def test_cross_entropy_weight_that_needs_a_gradient_gets_one():
    """The closed form only differentiates the logits; class weights that require a gradient take the
    autograd path, whose gradient agrees with finite differences."""
    g = torch.Generator().manual_seed(9)
    z = torch.randn(7, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    w = (torch.rand(4, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda w: losses.cross_entropy(z, y, weight=w, label_smoothing=0.2), (w,))


def test_cross_entropy_backward_twice_and_under_no_grad():
    z = torch.randn(5, 3, requires_grad=True)
    y = torch.tensor([0, 2, 1, 1, -100])
    loss = losses.cross_entropy(z, y, label_smoothing=0.1)
    (g1,) = torch.autograd.grad(loss, z, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, z)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    assert g1[4].abs().max() == 0  # the ignored row
    with torch.no_grad():
        assert_close_f32(
            losses.cross_entropy(z, y, label_smoothing=0.1), F.cross_entropy(z, y, label_smoothing=0.1), n=2 * 3 + 5 + 4
        )


@pytest.mark.parametrize("kw", [dict(), dict(label_smoothing=0.1, ignore_index=2)])
def test_cross_entropy_under_torch_func_transforms_matches_torch(kw):
    """Per-example gradients by vmap(grad(...)) (the batch-size experiment) and a Hessian by torch.func.hessian
    (forward over reverse) run, through autograd of the equations, and agree with torch's cross-entropy."""
    from torch.func import grad, hessian, vmap

    g = torch.Generator().manual_seed(10)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 2, 3, 1, 2, 0])
    per = [
        vmap(grad(lambda zi, yi, f=f: f(zi[None], yi[None], **kw)))(z, y)
        for f in (losses.cross_entropy, F.cross_entropy)
    ]
    torch.testing.assert_close(per[0], per[1], atol=1e-12, rtol=1e-12)
    h = [hessian(lambda zz, f=f: f(zz, y, **kw))(z) for f in (losses.cross_entropy, F.cross_entropy)]
    torch.testing.assert_close(h[0], h[1], atol=1e-12, rtol=1e-12)
