"""Clipping, Lookahead, Newton, schedules, the LR range test and hyper-parameter search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _tolerance import assert_close_f32
from dlterms import optim, training, tuning


def _params_with_grads(seed=0, scale=10.0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (4,), (2, 2)]
    ps = [torch.nn.Parameter(torch.randn(s, generator=g, dtype=torch.float64)) for s in shapes]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64) * scale
    return ps


# ----------------------------------------------------------------------------- clipping


@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (2.0, math.inf), (3.0, 3.0)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    ours, ref = _params_with_grads(), _params_with_grads()
    n1 = optim.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type=norm_type)
    assert abs(n1.item() - n2.item()) < 1e-10
    for a, b in zip(ours, ref):
        assert torch.allclose(a.grad, b.grad, atol=1e-12)


def test_clip_grad_norm_keeps_direction_and_caps_length():
    ps = _params_with_grads()
    before = torch.cat([p.grad.flatten() for p in ps])
    optim.clip_grad_norm_(ps, 1.0)
    after = torch.cat([p.grad.flatten() for p in ps])
    assert abs(after.norm().item() - 1.0) < 1e-5
    assert torch.allclose(after / after.norm(), before / before.norm(), atol=1e-12)


@pytest.mark.parametrize("clip_value", [0.1, 1.0, 50.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours, ref = _params_with_grads(), _params_with_grads()
    optim.clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(ref, clip_value)
    for a, b in zip(ours, ref):
        assert torch.equal(a.grad, b.grad)


def test_clip_errors():
    ps = _params_with_grads()
    with pytest.raises(ValueError, match="max_norm must be > 0, got 0"):
        optim.clip_grad_norm_(ps, 0)
    with pytest.raises(ValueError, match="clip_value must be > 0, got -1"):
        optim.clip_grad_value_(ps, -1)
    ps[0].grad[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="total gradient norm is nan"):
        optim.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)


# ----------------------------------------------------------------------------- Lookahead


def test_lookahead_slow_fast_rule_holds_exactly():
    """Replay the inner optimiser by hand: every k steps phi <- phi + alpha (theta - phi), theta <- phi."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g, dtype=torch.float64)
    y = torch.randn(32, generator=g, dtype=torch.float64)
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    w_ref = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    la = optim.Lookahead(optim.SGD([w], lr=0.1, momentum=0.9), k=3, alpha=0.4)
    inner = torch.optim.SGD([w_ref], lr=0.1, momentum=0.9)
    phi = w_ref.detach().clone()
    for t in range(1, 13):
        for p, opt in ((w, la), (w_ref, inner)):
            opt.zero_grad()
            ((x @ p - y) ** 2).mean().backward()
            opt.step()
        if t % 3 == 0:
            with torch.no_grad():
                phi += 0.4 * (w_ref - phi)
                w_ref.copy_(phi)
        assert torch.allclose(w, w_ref, atol=1e-12)
    assert torch.allclose(la.state[w]["slow"], phi, atol=1e-12)


class _ManualLookahead(training.Callback):
    """Lookahead's outer loop written out by hand around any optimiser: every k steps
    phi <- phi + alpha (theta - phi), theta <- phi."""

    def __init__(self, k: int, alpha: float):
        self.k, self.alpha, self.slow = k, alpha, None

    def on_train_begin(self, state):
        self.slow = [p.detach().clone() for p in state.model.parameters()]

    def on_batch_end(self, state):
        if state.step % self.k == 0:
            with torch.no_grad():
                for phi, theta in zip(self.slow, state.model.parameters()):
                    phi += self.alpha * (theta - phi)
                    theta.copy_(phi)


class _Weights(training.Callback):
    def __init__(self):
        self.rows = []

    def on_batch_end(self, state):
        self.rows.append(torch.cat([p.detach().flatten().clone() for p in state.model.parameters()]))


def test_lookahead_matches_a_hand_replay_of_the_outer_loop_inside_fit():
    """The lookahead experiment's set-up in float64: Lookahead(SGD with momentum) trained by fit beside
    plain SGD with momentum whose weights a callback pulls back by hand; same batches, same start."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(120, 6, generator=g, dtype=torch.float64)
    y = (
        x @ torch.randn(6, generator=g, dtype=torch.float64) + 0.5 * torch.randn(120, generator=g, dtype=torch.float64)
        > 0
    ).double()

    def run(lookahead: bool):
        torch.manual_seed(0)
        m = torch.nn.Linear(6, 1, dtype=torch.float64)
        inner = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        opt = optim.Lookahead(inner, k=5, alpha=0.5) if lookahead else inner
        rec = _Weights()
        cbs = [rec] if lookahead else [_ManualLookahead(5, 0.5), rec]
        loss = lambda out, t: torch.nn.functional.binary_cross_entropy_with_logits(out.squeeze(1), t)  # noqa: E731
        training.fit(
            m, (x, y), loss_fn=loss, optimizer=opt, epochs=9, batch_size=16, seed=0, max_steps=60, callbacks=cbs
        )
        return opt, cbs, torch.stack(rec.rows), m

    opt, _, w_ours, m = run(True)
    _, cbs, w_hand, _ = run(False)
    assert w_ours.shape == (60, 7)
    # float64, the same operations in the same order up to the fused add: agreement to a few ulps of |w| ~ 1
    assert (w_ours - w_hand).abs().max().item() <= 1e-12
    for p, phi in zip(m.parameters(), cbs[0].slow):
        assert (opt.state[p]["slow"] - phi).abs().max().item() <= 1e-12
    assert not torch.equal(w_ours[4], w_ours[5])  # it did train


def test_lookahead_alpha_one_is_the_inner_optimizer():
    a = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    b = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    la, ref = optim.Lookahead(optim.Adam([a], lr=0.1), k=2, alpha=1.0), torch.optim.Adam([b], lr=0.1)
    for _ in range(7):
        for p, opt in ((a, la), (b, ref)):
            opt.zero_grad()
            (p**2).sum().backward()
            opt.step()
    assert_close_f32(a, b, n=7 * 10)  # 7 Adam steps of ~10 operations each


def test_lookahead_state_dict_and_shared_lr():
    w = torch.nn.Parameter(torch.ones(2))
    la = optim.Lookahead(optim.SGD([w], lr=0.1, momentum=0.5), k=2)
    w.grad = torch.ones(2)
    la.step()
    sd = la.state_dict()
    la2 = optim.Lookahead(optim.SGD([w], lr=0.1, momentum=0.5), k=2)
    la2.load_state_dict(sd)
    assert la2.fast_steps == 1
    la2.param_groups[0]["lr"] = 0.01
    assert la2.optimizer.param_groups[0]["lr"] == 0.01  # one set of groups
    assert torch.equal(la2.state[w]["slow"], torch.ones(2))


def test_lookahead_errors():
    w = [torch.nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        optim.Lookahead(optim.SGD(w, lr=0.1), k=0)
    with pytest.raises(ValueError, match="alpha must be in \\[0, 1\\], got 1.5"):
        optim.Lookahead(optim.SGD(w, lr=0.1), alpha=1.5)
    with pytest.raises(ValueError, match="must be a torch.optim.Optimizer"):
        optim.Lookahead("sgd")


# ----------------------------------------------------------------------------- Newton


def test_hessian_matches_torch_functional():
    g = torch.Generator().manual_seed(1)
    A = torch.randn(4, 4, generator=g, dtype=torch.float64)
    w = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)

    def f(v):
        return torch.tanh(A @ v).pow(2).sum() + (v**4).sum()

    grad, H = optim.hessian(f(w), [w])
    assert torch.allclose(H, torch.autograd.functional.hessian(f, w.detach()), atol=1e-10)
    assert torch.allclose(grad, torch.autograd.grad(f(w), w)[0], atol=1e-12)


def test_newton_solves_a_quadratic_in_one_step():
    g = torch.Generator().manual_seed(2)
    M = torch.randn(5, 5, generator=g, dtype=torch.float64)
    A, b = M @ M.T + torch.eye(5, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    w = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    opt = optim.Newton([w])
    opt.step(lambda: 0.5 * w @ A @ w - b @ w)
    assert torch.allclose(w.detach(), torch.linalg.solve(A, b), atol=1e-10)


def test_newton_errors():
    w = [torch.nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError, match="damping must be >= 0, got -1"):
        optim.Newton(w, damping=-1)
    with pytest.raises(ValueError, match="needs a closure"):
        optim.Newton(w).step()


# ----------------------------------------------------------------------------- schedules


def _lrs(make, steps=30):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.5)
    sched = make(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return np.array(out)


_torch = torch.optim.lr_scheduler


@pytest.mark.parametrize(
    "ours,ref",
    [
        (lambda o: optim.StepLR(o, 7, 0.3), lambda o: _torch.StepLR(o, 7, 0.3)),
        # within T_max (torch's cosine climbs back up after T_max; ours stays at eta_min)
        (lambda o: optim.CosineAnnealingLR(o, 25, 0.01), lambda o: _torch.CosineAnnealingLR(o, 25, 0.01)),
        (lambda o: optim.LinearLR(o, 0.1, 1.0, 8), lambda o: _torch.LinearLR(o, 0.1, 1.0, 8)),
        (
            lambda o: optim.SequentialLR(o, [optim.LinearLR(o, 0.1, 1.0, 5), optim.CosineAnnealingLR(o, 25)], [5]),
            lambda o: _torch.SequentialLR(o, [_torch.LinearLR(o, 0.1, 1.0, 5), _torch.CosineAnnealingLR(o, 25)], [5]),
        ),
    ],
)
def test_schedules_match_torch(ours, ref):
    """Over 25 steps (warm-up then cosine crosses its milestone at 5)."""
    assert np.allclose(_lrs(ours, 25), _lrs(ref, 25), atol=1e-12)


def test_cosine_stays_at_eta_min_after_t_max():
    assert np.allclose(_lrs(lambda o: optim.CosineAnnealingLR(o, 10, 0.01), 20)[10:], 0.01)


def test_schedule_state_dict_and_errors():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = optim.SGD([p], lr=1.0)
    s = optim.StepLR(opt, 2, 0.5)
    for _ in range(3):
        s.step()
    s2 = optim.StepLR(opt, 2, 0.5)
    s2.load_state_dict(s.state_dict())
    assert s2.get_last_lr() == [0.5]
    with pytest.raises(ValueError, match="T_max must be an integer >= 1, got 0"):
        optim.CosineAnnealingLR(opt, 0)
    with pytest.raises(ValueError, match="gamma must be > 0, got 0"):
        optim.StepLR(opt, 2, 0)
    with pytest.raises(ValueError, match="milestones"):
        optim.SequentialLR(opt, [optim.StepLR(opt, 1), optim.StepLR(opt, 1)], [])


# ----------------------------------------------------------------------------- LR range test


def test_lr_range_test_ramps_finds_and_restores():
    from dlterms.losses import cross_entropy

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    before = [p.detach().clone() for p in net.parameters()]
    opt = optim.SGD(net.parameters(), lr=0.123)
    res = tuning.lr_range_test(
        net, (x, y), loss_fn=cross_entropy, optimizer=opt, start_lr=1e-4, end_lr=100.0, num_iter=80, batch_size=32
    )
    assert res.lrs[0] == pytest.approx(1e-4)
    ratios = np.array(res.lrs[1:]) / np.array(res.lrs[:-1])
    assert np.allclose(ratios, ratios[0])  # geometric ramp
    assert res.stop_reason in ("diverged", "non-finite loss")  # lr = 100 is far too large
    assert 1e-4 < res.suggestion < 100.0
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert opt.param_groups[0]["lr"] == 0.123
    with pytest.raises(ValueError, match="need 0 < start_lr < end_lr"):
        tuning.lr_range_test(net, (x, y), loss_fn=cross_entropy, optimizer=opt, start_lr=1.0, end_lr=0.1)


# ----------------------------------------------------------------------------- search


def test_grid_search_tries_every_combination():
    res = tuning.grid_search(lambda c: -((c["a"] - 2) ** 2) - c["b"], {"a": [1, 2, 3], "b": [0, 1]}, base={"c": 9})
    assert len(res.trials) == 6
    assert res.best_config == {"c": 9, "a": 2, "b": 0}
    assert tuning.grid_search(lambda c: c["a"], {"a": [3, 1, 2]}, mode="min").best_score == 1


def test_random_search_is_seeded_and_within_bounds():
    space = {
        "lr": tuning.LogUniform(1e-4, 1e-1),
        "width": tuning.IntUniform(8, 64, log=True),
        "act": tuning.Choice(["relu", "tanh"]),
        "p": tuning.Uniform(0.0, 0.5),
        "fixed": 3,
    }
    r1 = tuning.random_search(lambda c: -abs(math.log10(c["lr"]) + 2), space, n_trials=40, seed=1)
    r2 = tuning.random_search(lambda c: -abs(math.log10(c["lr"]) + 2), space, n_trials=40, seed=1)
    assert [t.config for t in r1.trials] == [t.config for t in r2.trials]
    for t in r1.trials:
        c = t.config
        assert 1e-4 <= c["lr"] < 1e-1 and 8 <= c["width"] <= 64 and c["act"] in ("relu", "tanh")
        assert 0 <= c["p"] < 0.5 and c["fixed"] == 3
    assert abs(math.log10(r1.best_config["lr"]) + 2) < 0.3
    with pytest.raises(ValueError, match="need 0 < low < high"):
        tuning.LogUniform(0, 1)
    with pytest.raises(ValueError, match="n_trials must be an integer >= 1, got 0"):
        tuning.random_search(lambda c: 0.0, space, n_trials=0)
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        tuning.grid_search(lambda c: 0.0, {"a": [1]}, mode="best")
