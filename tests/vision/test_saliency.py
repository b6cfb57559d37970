"""Hooks, saliency and Grad-CAM: against autograd directly and the CAM identity."""

from __future__ import annotations

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.methods.saliency import ActivationRecorder, grad_cam, occlude, saliency_map
from dlterms.models.cnn import ConvNet, digits_cnn


def test_recorder_captures_activation_and_gradient():
    torch.manual_seed(0)
    m = digits_cnn(batch_norm=False)
    x = torch.randn(3, 1, 8, 8)
    with ActivationRecorder(m, ["features.0", "features.3"]) as rec:
        out = m(x)
        out[:, 2].sum().backward()
    a = rec.activations["features.3"]
    assert a.shape == (3, 32, 4, 4)
    # the same activation and gradient by hand
    h = m.features[:3](x)
    a_ref = m.features[3](h)
    torch.testing.assert_close(a, a_ref.detach())
    rest = torch.nn.Sequential(*list(m.features)[4:])
    a_leaf = a_ref.detach().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(m.head(rest(a_leaf).flatten(1))[:, 2].sum(), a_leaf)
    torch.testing.assert_close(rec.gradients["features.3"], g_ref)
    assert not m.features[3]._forward_hooks  # removed on exit


def test_saliency_is_abs_input_gradient():
    torch.manual_seed(1)
    m = digits_cnn(batch_norm=False)
    x = torch.randn(4, 1, 8, 8)
    s = saliency_map(m, x, target=torch.tensor([0, 1, 2, 3]))
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(m(xr).gather(1, torch.tensor([[0], [1], [2], [3]])).sum(), xr)
    torch.testing.assert_close(s, g.abs()[:, 0])


def test_grad_cam_equals_cam_for_global_average_pooling():
    torch.manual_seed(2)
    m = ConvNet(3, 5, (10, 12), channels=(6, 7), pool=None, global_pool=True)
    x = torch.randn(2, 3, 10, 12)
    cam = grad_cam(m, x, "features.2", target=3, upsample=False)
    a = m.features[:3](x)  # (B, K, h, w): the last conv's output, before its ReLU
    # y_c = sum_k w_ck mean_ij relu(A_kij), so dy_c/dA_kij = w_ck 1[A_kij > 0] / hw and alpha is its mean
    w = m.head.weight[3]  # (K,)
    hw = a.shape[2] * a.shape[3]
    alpha = (w.view(1, -1, 1, 1) * (a > 0).float() / hw).mean(dim=(2, 3), keepdim=True)
    ref = (alpha * a).sum(1).relu()
    # float32 rule: the gradient's mean over h * w = 120 positions, then a sum over 7 channels whose terms
    # can cancel: their size, not the result's, sets the scale
    terms = float((alpha.abs() * a.abs()).sum(1).max().detach())
    assert_close_f32(cam, ref.detach(), n=120 + 7 + 4, scale=terms)
    # on the post-ReLU map Grad-CAM is exactly CAM / (hw)
    cam_relu = grad_cam(m, x, "features.3", target=3, upsample=False)
    ref_cam = (w.view(1, -1, 1, 1) * a.relu()).sum(1).relu() / hw
    assert_close_f32(cam_relu, ref_cam.detach(), n=120 + 7 + 4, scale=terms)
    assert grad_cam(m, x, "features.3", target=3).shape == (2, 10, 12)


def test_occlude_and_errors():
    x = torch.ones(2, 3, 4, 4)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 1, 2] = True
    y = occlude(x, mask)
    assert y[0, :, 1, 2].eq(0).all() and y.sum() == 2 * 3 * 16 - 3
    with pytest.raises(ValueError, match="mask must be"):
        occlude(x, mask[0])
    with pytest.raises(ValueError, match="no sub-module named"):
        ActivationRecorder(digits_cnn(), ["conv9"])
