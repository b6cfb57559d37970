"""EWC's Fisher diagonal against a brute-force per-example, per-class computation; the penalty by
hand; the replay memory's balance."""

from __future__ import annotations

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.methods.continual import EWC, ReplayMemory, fisher_diagonal


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))


def test_fisher_matches_brute_force_expectation():
    model = _model()
    x = torch.randn(5, 3)
    F = fisher_diagonal(model, x)
    ref = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for xi in x:
        probs = torch.softmax(model(xi[None]), -1)[0].detach()
        for k in range(3):
            model.zero_grad()
            torch.log_softmax(model(xi[None]), -1)[0, k].backward()
            for n, p in model.named_parameters():
                ref[n] += probs[k] * p.grad**2 / len(x)
    for n in ref:
        # backward through 3-4-3 and log-softmax (~16 roundings), squared, summed over 3 classes and 5 examples
        assert_close_f32(F[n], ref[n], n=2 * 16 + 3 * 5)


def test_fisher_via_functorch_per_sample_grads():
    # the same quantity through torch.func: E_y[(d log p / d theta)^2], vectorised over examples
    from torch.func import functional_call, jacrev, vmap

    model = _model()
    x = torch.randn(6, 3)
    params = {n: p.detach() for n, p in model.named_parameters()}

    def logp(prm, xi):
        return torch.log_softmax(functional_call(model, prm, (xi[None],))[0], -1)  # (K,)

    jac = vmap(jacrev(logp), in_dims=(None, 0))(params, x)  # name -> (N, K, *shape)
    probs = torch.softmax(model(x), -1).detach()  # (N, K)
    F = fisher_diagonal(model, x)
    for n, j in jac.items():
        ref = (probs.reshape(*probs.shape, *[1] * (j.dim() - 2)) * j**2).sum(1).mean(0)
        assert_close_f32(F[n], ref, n=2 * 16 + 3 * 6)


def test_penalty_by_hand_and_zero_at_consolidated_weights():
    model = _model()
    ewc = EWC(model, lam=4.0)
    assert float(ewc.penalty().detach()) == 0.0
    ewc.consolidate(torch.randn(4, 3))
    assert float(ewc.penalty().detach()) == pytest.approx(0.0)
    F, theta = ewc.tasks[0]
    with torch.no_grad():
        model[0].weight.add_(0.5)
    expected = 0.5 * 4.0 * float((F["0.weight"] * 0.25).sum())
    # float32 rule: F (theta - theta*)^2 summed over the model's 31 parameters
    assert_close_f32(ewc.penalty().detach(), expected, n=31 + 4)
    loss = ewc.loss(lambda out, y: out.sum() * 0)(torch.zeros(2), None)
    assert_close_f32(loss.detach(), expected, n=31 + 4)


def test_replay_memory_is_class_balanced_and_mixes():
    x, y = torch.arange(100.0)[:, None], torch.arange(100) % 5
    mem = ReplayMemory(20, torch.Generator().manual_seed(0))
    mem.add_task(x, y)
    assert len(mem) == 20 and torch.bincount(mem.y[0]).tolist() == [4] * 5
    xm, ym = mem.mix(x[:3], y[:3])
    assert len(xm) == 23 and len(ym) == 23


def test_errors():
    with pytest.raises(ValueError, match="lam"):
        EWC(_model(), lam=-1.0)
    with pytest.raises(ValueError, match="at least one example"):
        fisher_diagonal(_model(), torch.zeros(0, 3))
    with pytest.raises(ValueError, match="per_task"):
        ReplayMemory(0)
