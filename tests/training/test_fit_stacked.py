"""fit_stacked: G models trained side by side equal G separate `fit` runs with SGD."""

from __future__ import annotations

import copy

import pytest
import torch

from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import SGD
from dlterms.training import fit, fit_stacked


def _data(n=96, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    return x, y


def _models(count, seed=0, activation="tanh"):
    out = []
    for i in range(count):
        torch.manual_seed(seed + i)
        out.append(MLP([5, 8, 3], activation=activation).double())
    return out


@pytest.mark.parametrize("per_model_seeds", [False, True])
def test_matches_separate_fit_runs(per_model_seeds):
    x, y = _data()
    lrs = [0.05, 0.2, 0.5]
    models = _models(3)
    refs = [copy.deepcopy(m) for m in models]
    seeds = [7, 8, 9] if per_model_seeds else 7
    h = fit_stacked(models, (x, y), loss_fn=cross_entropy, lr=lrs, momentum=0.9, epochs=3, batch_size=16, seed=seeds)
    assert h.steps == 3 * 6 and h.epochs_run == 3 and h.train_loss.shape == (3, 3)
    for g, (m, r, lr) in enumerate(zip(models, refs, lrs)):
        hr = fit(
            r,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=SGD(r.parameters(), lr=lr, momentum=0.9),
            epochs=3,
            batch_size=16,
            seed=seeds[g] if per_model_seeds else seeds,
        )
        for a, b in zip(m.parameters(), r.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        torch.testing.assert_close(
            h.train_loss[:, g], torch.tensor(hr.train_loss, dtype=torch.float64), rtol=0, atol=1e-12
        )
        torch.testing.assert_close(
            h.step_loss[:, g], torch.tensor(hr.step_loss, dtype=torch.float64), rtol=0, atol=1e-12
        )


def test_diverged_model_stops_and_others_go_on():
    x, y = _data()
    models = _models(2, activation="relu")
    ref = copy.deepcopy(models[0])
    h = fit_stacked(models, (x, y), loss_fn=cross_entropy, lr=[0.1, 1e200], epochs=2, batch_size=16, seed=1)
    assert h.nonfinite_step[0] is None and h.nonfinite_step[1] is not None
    assert h.diverged == [False, True]
    fit(ref, (x, y), loss_fn=cross_entropy, optimizer=SGD(ref.parameters(), lr=0.1), epochs=2, batch_size=16, seed=1)
    for a, b in zip(models[0].parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_callback_forward_and_stop():
    x, y = _data()
    models = _models(2)
    seen = []

    def cb(state):
        out = state.forward(x)
        assert out.shape == (2, len(x), 3)
        seen.append(state.step)
        state.stop = state.step >= 4

    h = fit_stacked(
        models, (x, y), loss_fn=cross_entropy, lr=0.1, epochs=5, batch_size=16, seed=0, callback=cb, every=2
    )
    assert seen == [2, 4] and h.steps == 4


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(lr=[0.1]), "lr must be one positive number or 2 of them"),
        (dict(lr=0.1, seed=[1, 2, 3]), "seed must be one integer or 2 of them"),
        (dict(lr=0.1, epochs=0), "epochs must be a positive integer"),
        (dict(lr=0.1, every=0), "every must be an integer >= 1"),
    ],
)
def test_errors(kw, match):
    x, y = _data()
    kw = {"epochs": 1, **kw}
    with pytest.raises(ValueError, match=match):
        fit_stacked(_models(2), (x, y), loss_fn=cross_entropy, batch_size=16, **kw)
    with pytest.raises(ValueError, match="models must hold at least one model"):
        fit_stacked([], (x, y), loss_fn=cross_entropy, lr=0.1, epochs=1)


def test_models_with_buffers_are_refused():
    from dlterms.nn import BatchNorm1d, Linear

    x, y = _data()
    models = [torch.nn.Sequential(Linear(5, 3), BatchNorm1d(3)).double() for _ in range(2)]
    with pytest.raises(ValueError, match="buffers"):
        fit_stacked(models, (x, y), loss_fn=cross_entropy, lr=0.1, epochs=1, batch_size=16)
