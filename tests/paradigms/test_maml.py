"""MAML and Reptile: the batched task MLP against per-task torch.nn computations, the second-order
meta-gradient against finite differences and against a per-task torch.func computation, Reptile's
update by hand."""

from __future__ import annotations

import copy

import pytest
import torch

from dlterms.methods.maml import SinusoidTasks, TaskMLP, inner_adapt, maml_loss, reptile_step


def _data(T=3, n=6, seed=0):
    x, y, _, _ = SinusoidTasks(torch.Generator().manual_seed(seed)).sample(T, n)
    return x.double(), y.double()


def _model(seed=0):
    torch.manual_seed(seed)
    return TaskMLP([1, 8, 8, 1]).double()


def test_batched_forward_and_inner_step_equal_per_task_computation():
    model, (x, y) = _model(), _data()
    params = model.params(3)
    torch.testing.assert_close(model(x, params)[1], model(x[1]))
    adapted = inner_adapt(model, x, y, lr=0.05, steps=1)
    for t in range(3):
        model.zero_grad()
        (model(x[t]) - y[t]).pow(2).mean().backward()
        ref = [p - 0.05 * p.grad for p in [*model.weights, *model.biases]]
        for a, r in zip(adapted, ref):
            torch.testing.assert_close(a[t], r.detach())


def test_second_order_meta_gradient_matches_finite_differences():
    model, (x, y) = _model(1), _data(seed=1)
    support, query = (x[:, :3], y[:, :3]), (x[:, 3:], y[:, 3:])
    loss = maml_loss(model, support, query, inner_lr=0.1, inner_steps=2)
    grad = torch.autograd.grad(loss, model.weights[1])[0]
    h = 1e-6
    for idx in [(0, 0), (3, 5), (7, 2)]:
        with torch.no_grad():
            model.weights[1][idx] += h
        up = float(maml_loss(model, support, query, 0.1, 2).detach())
        with torch.no_grad():
            model.weights[1][idx] -= 2 * h
        down = float(maml_loss(model, support, query, 0.1, 2).detach())
        with torch.no_grad():
            model.weights[1][idx] += h
        assert float(grad[idx]) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)
    first = torch.autograd.grad(maml_loss(model, support, query, 0.1, 2, first_order=True), model.weights[1])[0]
    assert not torch.allclose(first, grad)  # dropping the second derivatives changes the gradient


def test_meta_gradient_matches_torch_func():
    from torch.func import functional_call, grad

    model, (x, y) = _model(2), _data(T=2, seed=2)
    ref_net = torch.nn.Sequential(
        torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
    ).double()
    theta = {}
    for i, j in enumerate((0, 2, 4)):
        theta[f"{j}.weight"] = model.weights[i].detach().t()
        theta[f"{j}.bias"] = model.biases[i].detach()

    def task_loss(p, xs, ys):
        return (functional_call(ref_net, p, (xs,)) - ys).pow(2).mean()

    def meta(p):
        total = 0
        for t in range(2):
            g = grad(task_loss)(p, x[t, :3], y[t, :3])
            adapted = {k: p[k] - 0.1 * g[k] for k in p}
            total = total + task_loss(adapted, x[t, 3:], y[t, 3:])
        return total / 2

    ref = grad(meta)(theta)
    loss = maml_loss(model, (x[:, :3], y[:, :3]), (x[:, 3:], y[:, 3:]), 0.1, 1)
    ours = torch.autograd.grad(loss, list(model.weights))
    for i, j in enumerate((0, 2, 4)):
        torch.testing.assert_close(ours[i].t(), ref[f"{j}.weight"])


def test_reptile_with_one_task_one_step_and_epsilon_one_is_sgd():
    model, (x, y) = _model(3), _data(T=1, seed=3)
    before = [p.detach().clone() for p in model.weights]
    expected = inner_adapt(model, x, y, lr=0.05, steps=1)
    reptile_step(model, x, y, inner_lr=0.05, inner_steps=1, outer_lr=1.0)
    for p, e, b in zip(model.weights, expected, before):
        torch.testing.assert_close(p.detach(), e[0].detach())
        assert not torch.equal(p.detach(), b)


def test_errors():
    with pytest.raises(ValueError, match="sizes"):
        TaskMLP([1])
    with pytest.raises(ValueError, match="lr"):
        inner_adapt(_model(), *_data(), lr=0.0, steps=1)
    with pytest.raises(ValueError, match="outer_lr"):
        reptile_step(_model(), *_data(), 0.1, 1, outer_lr=2.0)


def test_maml_train_is_the_outer_loop_written_out():
    """maml_train = for each iteration: sample tasks, maml_loss on support/query, one Adam step."""
    from dlterms.methods.maml import SinusoidTasks, TaskMLP, maml_loss, maml_train
    from dlterms.optim import Adam

    torch.manual_seed(0)
    a = TaskMLP([1, 16, 1])
    b = copy.deepcopy(a)
    losses = maml_train(a, SinusoidTasks(torch.Generator().manual_seed(5)), 30, 4, 5, 0.01, meta_lr=1e-3)
    tasks, opt, by_hand = SinusoidTasks(torch.Generator().manual_seed(5)), Adam(b.parameters(), lr=1e-3), []
    for _ in range(30):
        x, y, _, _ = tasks.sample(4, 10)
        loss = maml_loss(b, (x[:, :5], y[:, :5]), (x[:, 5:], y[:, 5:]), 0.01)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        by_hand.append(float(loss.detach()))
    assert losses == by_hand
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="k_shot must be an integer"):
        maml_train(a, tasks, 1, 4, 0, 0.01)
