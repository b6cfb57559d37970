"""The fit loop: batches, seeding, callbacks, non-finite detection, schedulers, closures."""

from __future__ import annotations

import math

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms import optim
from dlterms.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from dlterms.training import (
    Callback,
    EarlyStopping,
    GradientClipping,
    GradientNormRecorder,
    ProgressCallback,
    batches,
    fit,
    gradient_norms,
)


def _data(n=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).long()
    return x, y


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


class _Counter(Callback):
    def __init__(self, n):
        self.seen = []
        self.n = n

    def on_epoch_begin(self, state):
        self.seen.append(torch.zeros(self.n, dtype=torch.long))

    def on_batch_end(self, state):
        self.seen[-1][state.batch_index] += 1


def test_every_example_once_per_epoch_and_steps_per_epoch():
    x, y = _data(103)
    c = _Counter(103)
    h = fit(
        _net(),
        (x, y),
        loss_fn=cross_entropy,
        optimizer=optim.SGD(_net().parameters(), lr=0.1),
        epochs=3,
        batch_size=10,
        callbacks=[c],
    )
    assert h.steps == 3 * math.ceil(103 / 10)
    assert all(bool((s == 1).all()) for s in c.seen)
    assert len(h.train_loss) == len(h.lr) == len(h.epoch_seconds) == 3


def test_same_seed_same_batches_and_weights():
    x, y = _data()
    runs = []
    for _ in range(2):
        net = _net()
        fit(
            net,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=optim.Adam(net.parameters(), lr=0.01),
            epochs=3,
            batch_size=16,
            seed=5,
        )
        runs.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert torch.equal(runs[0], runs[1])
    a = [b.tolist() for b in batches(10, 3, torch.Generator().manual_seed(1))]
    assert a == [b.tolist() for b in batches(10, 3, torch.Generator().manual_seed(1))]
    assert sorted(sum(a, [])) == list(range(10))


def test_training_lowers_the_loss_and_reports_progress():
    x, y = _data()
    net = _net()
    seen = []
    h = fit(
        net,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=optim.Adam(net.parameters(), lr=0.05),
        epochs=10,
        batch_size=None,
        val=(x, y),
        callbacks=[ProgressCallback(lambda f, m: seen.append(f))],
    )
    assert h.steps == 10 and h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert len(h.val_acc) == 10 and seen[-1] == 1.0


def test_nonfinite_loss_stops_cleanly_with_the_step():
    x, y = _data()
    net = _net()
    h = fit(
        net,
        (x, y.float().unsqueeze(1).expand(-1, 2) * 1e3),
        loss_fn=mse_loss,
        optimizer=optim.SGD(net.parameters(), lr=10.0),
        epochs=50,
        batch_size=10,
    )
    assert h.diverged and h.stop_reason == "non-finite loss"
    assert h.nonfinite_step == len(h.step_loss)


def test_early_stopping_restores_the_best_weights():
    x, y = _data(60)
    xv, yv = _data(60, seed=1)
    yv = 1 - yv  # validation labels flipped: val loss rises as training succeeds
    net = _net()
    es = EarlyStopping(patience=3)
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, state):
            snapshots.append({k: v.clone() for k, v in state.model.state_dict().items()})

    h = fit(
        net,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=optim.Adam(net.parameters(), lr=0.05),
        epochs=100,
        batch_size=None,
        val=(xv, yv),
        callbacks=[es, Snap()],
    )
    assert h.stop_reason == "early stopping" and h.epochs_run < 100
    best = min(range(len(h.val_loss)), key=h.val_loss.__getitem__)
    assert h.best_epoch == best
    for k, v in net.state_dict().items():
        assert torch.equal(v, snapshots[best][k])
    with pytest.raises(ValueError, match="monitor must be"):
        EarlyStopping(monitor="loss")


def test_gradient_clipping_callback_caps_the_norm():
    x, y = _data()
    net = _net()
    clip = GradientClipping(max_norm=0.01)
    rec = GradientNormRecorder()

    class After(Callback):
        def after_backward(self, state):
            assert sum(float(p.grad.norm()) ** 2 for p in state.model.parameters()) ** 0.5 <= 0.01 + 1e-6

    h = fit(
        net,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=optim.SGD(net.parameters(), lr=0.1),
        epochs=1,
        batch_size=20,
        callbacks=[clip, After(), rec],
    )
    assert set(h.extra) == {"grad_norm", "grad_norm/0", "grad_norm/2"} and len(h.extra["grad_norm"]) == 5
    assert len(clip.norms) == 5 and max(clip.norms) > 0.01
    assert rec.every == 1


def test_gradient_norms_per_module_and_parameter():
    net = _net()
    x, y = _data()
    cross_entropy(net(x), y).backward()
    per_p, per_m = gradient_norms(net), gradient_norms(net, per="module")
    assert set(per_m) == {"0", "2"}
    # float32 rule: the 24 + 8 squared gradients of layer 0 summed, in two orders
    assert_close_f32(per_m["0"], math.hypot(per_p["0.weight"], per_p["0.bias"]), n=32 + 2)


def test_step_scheduler_and_lr_history():
    x, y = _data(40)
    net = _net()
    opt = optim.SGD(net.parameters(), lr=1.0)
    sched = optim.StepLR(opt, step_size=4, gamma=0.5)
    h = fit(
        net,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=opt,
        epochs=3,
        batch_size=10,
        scheduler=sched,
        scheduler_interval="step",
    )
    assert h.lr == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="scheduler_interval must be"):
        fit(net, (x, y), loss_fn=cross_entropy, optimizer=opt, epochs=1, scheduler_interval="batch")


def test_newton_through_fit_uses_a_closure():
    x, y = _data(200)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).double()  # logistic regression: a strictly convex loss with the penalty

    def loss_fn(out, t):
        return binary_cross_entropy_with_logits(out.squeeze(1), t.double()) + 1e-2 * model.weight.pow(2).sum()

    h = fit(
        model, (x.double(), y), loss_fn=loss_fn, optimizer=optim.Newton(model.parameters()), epochs=8, batch_size=None
    )
    assert h.train_loss[-1] < h.train_loss[0]
    assert model.weight.grad is None  # no backward pass: Newton differentiated the closure itself
