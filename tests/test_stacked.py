"""ModelStack: M copies side by side give what each copy gives alone (forward, gradients, training),
for an MLP and a GRU classifier; bad input is refused."""

from __future__ import annotations

import pytest
import torch

from dlterms.losses import cross_entropy
from dlterms.models.sequence_classifier import RecurrentClassifier
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.stacked import ModelStack


def _copies(make, seeds):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(make())
    return out


def test_forward_matches_each_copy(float64):
    models = _copies(lambda: MLP([4, 8, 3]), range(3))
    stack = ModelStack(models)
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
    out = stack(x)
    assert out.shape == (3, 5, 3)
    for i, m in enumerate(models):
        torch.testing.assert_close(out[i], m(x[i]), rtol=0, atol=1e-12)
        torch.testing.assert_close(stack(x[0], shared=True)[i], m(x[0]), rtol=0, atol=1e-12)


def test_training_a_stack_equals_training_each_copy_alone(float64):
    """Adam on the stacked parameters with the summed loss = one Adam per copy on its own loss."""
    g = torch.Generator().manual_seed(1)
    # copy i's batch at each step: 5 sequences of 7 steps of 4 features
    x, y = torch.randn(3, 6, 5, 7, 4, generator=g), torch.randint(0, 2, (3, 6, 5), generator=g)
    make = lambda: RecurrentClassifier("gru", 4, 6, 2)  # noqa: E731
    alone = _copies(make, (10, 11, 12))
    stack = ModelStack(_copies(make, (10, 11, 12)))
    opt = Adam(stack.parameters(), lr=1e-2)
    opts = [Adam(m.parameters(), lr=1e-2) for m in alone]
    for step in range(6):
        logits = stack(x[:, step])  # (3, 5, 2)
        loss = cross_entropy(logits.reshape(-1, 2), y[:, step].reshape(-1), reduction="none").view(3, -1)
        opt.zero_grad()
        loss.mean(1).sum().backward()
        opt.step()
        for i, (m, o) in enumerate(zip(alone, opts, strict=True)):
            o.zero_grad()
            cross_entropy(m(x[i, step]), y[i, step]).backward()
            o.step()
    for i, m in enumerate(alone):
        for name, p in m.named_parameters():
            torch.testing.assert_close(stack.params[name][i], p, rtol=0, atol=1e-12)
        torch.testing.assert_close(stack.model(i)(x[i, 0]), m(x[i, 0]), rtol=0, atol=1e-12)


def test_bad_stacks():
    with pytest.raises(ValueError, match="at least one module"):
        ModelStack([])
    with pytest.raises(ValueError, match="other parameter names or shapes"):
        ModelStack([MLP([2, 3]), MLP([2, 4])])
    with pytest.raises(ValueError, match="share one class"):
        ModelStack([MLP([2, 3]), torch.nn.Linear(2, 3)])
    with pytest.raises(ValueError, match="buffers"):
        ModelStack([torch.nn.BatchNorm1d(3)])
    stack = ModelStack([MLP([2, 3]), MLP([2, 3])])
    with pytest.raises(ValueError, match="leading dimension of size 2"):
        stack(torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"i must be in \[-2, 2\), got 2"):
        stack.model(2)


# ---- ConvNetStack: M ConvNets as one grouped network


def _convnets(seeds, **kw):
    from dlterms.models.cnn import ConvNet

    return _copies(lambda: ConvNet(1, 4, (6, 6), channels=(3, 5), pool=[1, 2], **kw), seeds)


def test_convnet_stack_forward_matches_each_model():
    from dlterms.stacked import ConvNetStack

    models = _convnets(range(3))
    stack = ConvNetStack(models)
    x = torch.randn(3, 7, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    out = stack(x)
    assert out.shape == (3, 7, 4)
    for k, m in enumerate(models):
        # float32 sums of at most 45 products per conv output and 45 per logit
        torch.testing.assert_close(out[k], m(x[k]), rtol=1e-5, atol=1e-5)


def test_training_a_convnet_stack_equals_training_each_alone(float64):
    """Adam on the joint parameters with the summed loss = one Adam per model on its own data."""
    from dlterms.stacked import ConvNetStack

    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(3, 5, 8, 1, 6, 6, generator=g), torch.randint(0, 4, (3, 5, 8), generator=g)  # (M, steps, B, ...)
    alone = _convnets(range(3))
    for k, m in enumerate(alone):
        opt = Adam(m.parameters(), lr=1e-2)
        for t in range(5):
            opt.zero_grad()
            cross_entropy(m(x[k, t]), y[k, t]).backward()
            opt.step()
    models = _convnets(range(3))
    stack = ConvNetStack(models)
    opt = Adam(stack.parameters(), lr=1e-2)
    for t in range(5):
        opt.zero_grad()
        (3 * cross_entropy(stack(x[:, t]).flatten(0, 1), y[:, t].flatten())).backward()
        opt.step()
    init = _convnets([0])[0].state_dict()
    assert models[0].state_dict()["head.weight"].equal(init["head.weight"])  # untouched until write_back
    stack.write_back()
    moved = 0.0
    for k, (a, b) in enumerate(zip(alone, models)):
        for name, t in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[name], t, rtol=1e-9, atol=1e-11, msg=f"model {k}, {name}")
        moved = max(moved, float((alone[0].state_dict()["head.weight"] - init["head.weight"]).abs().max()))
    assert moved > 1e-2  # training changed the weights, so the comparison means something


def test_bad_convnet_stacks():
    from dlterms.models.cnn import ConvNet
    from dlterms.stacked import ConvNetStack

    with pytest.raises(ValueError, match="at least one ConvNet"):
        ConvNetStack([])
    with pytest.raises(ValueError, match=r"models\[0\] must be a ConvNet, got MLP"):
        ConvNetStack([MLP([2, 2])])
    with pytest.raises(ValueError, match="dropout"):
        ConvNetStack(_convnets([0], dropout=0.5))
    with pytest.raises(ValueError, match=r"models\[1\] has another input"):
        ConvNetStack([*_convnets([0]), ConvNet(1, 4, (8, 8), channels=(3, 5), pool=[1, 2])])
    stack = ConvNetStack(_convnets(range(2)))
    with pytest.raises(ValueError, match=r"x must have shape \(2, B, 1, 6, 6\), got \(3, 4, 1, 6, 6\)"):
        stack(torch.zeros(3, 4, 1, 6, 6))
