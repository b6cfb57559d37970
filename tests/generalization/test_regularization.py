"""Penalties, decoupled weight decay, and ridge/lasso against scikit-learn's Ridge and Lasso (1e-3)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso, Ridge

from _tolerance import assert_close_f32
from dlterms.methods.regularization import (
    DecoupledWeightDecay,
    decoupled_weight_decay_,
    l1_penalty,
    l2_penalty,
    lasso,
    ridge,
    soft_threshold,
    weight_parameters,
)


def _data(n=80, d=12, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=d)
    w = rng.normal(size=(d,) if k is None else (d, k))
    y = X @ w + 0.5 * rng.normal(size=(n,) if k is None else (n, k)) + 2.0
    return X, y


@pytest.mark.parametrize("alpha", [0.0, 0.1, 10.0, 1000.0])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_matches_sklearn(alpha, fit_intercept):
    X, y = _data()
    coef, b = ridge(X, y, alpha, fit_intercept)
    ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky").fit(X, y)
    np.testing.assert_allclose(coef, ref.coef_, atol=1e-3, rtol=0)
    np.testing.assert_allclose(b, ref.intercept_, atol=1e-3, rtol=0)


def test_ridge_multi_target():
    X, y = _data(k=3)
    coef, b = ridge(X, y, 5.0)
    ref = Ridge(alpha=5.0).fit(X, y)
    assert coef.shape == ref.coef_.shape == (3, 12)
    np.testing.assert_allclose(coef, ref.coef_, atol=1e-3, rtol=0)
    np.testing.assert_allclose(b, ref.intercept_, atol=1e-3, rtol=0)


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.5, 2.0])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_lasso_matches_sklearn(alpha, fit_intercept):
    X, y = _data(n=60, d=25, seed=1)
    coef, b = lasso(X, y, alpha, fit_intercept)
    ref = Lasso(alpha=alpha, fit_intercept=fit_intercept, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(coef, ref.coef_, atol=1e-3, rtol=0)
    np.testing.assert_allclose(b, ref.intercept_, atol=1e-3, rtol=0)
    assert np.array_equal(coef == 0, ref.coef_ == 0)


def test_lasso_large_alpha_zeroes_everything():
    X, y = _data()
    coef, b = lasso(X, y, alpha=1e6)
    assert np.all(coef == 0)
    assert b == pytest.approx(y.mean())


def test_soft_threshold_by_hand():
    np.testing.assert_array_equal(
        soft_threshold(np.array([-3.0, -0.5, 0.0, 0.5, 3.0]), 1.0), [-2.0, 0.0, 0.0, 0.0, 2.0]
    )


def test_penalties_by_hand_and_gradients():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2), torch.nn.Linear(2, 1))
    ws = weight_parameters(model)
    assert [tuple(w.shape) for w in ws] == [(2, 3), (1, 2)]  # biases and BN scales excluded
    l2 = l2_penalty(model, 0.1)
    assert_close_f32(l2, 0.1 * sum((w**2).sum().item() for w in ws), n=8 + 2)  # float32 rule: 8 weights
    l1 = l1_penalty(model, 0.1)
    assert_close_f32(l1, 0.1 * sum(w.abs().sum().item() for w in ws), n=8 + 2)
    l2.backward()
    assert_close_f32(ws[0].grad, 0.2 * ws[0].detach(), n=2)


def test_decoupled_decay_equals_sgd_l2_for_plain_sgd():
    # For plain SGD, decoupled decay then step == step on loss + (lambda/2)||w||^2.
    torch.manual_seed(0)
    a = torch.nn.Linear(4, 3)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(16, 4), torch.randn(16, 3)
    lr, lam = 0.1, 0.01
    loss_a = ((a(x) - y) ** 2).mean() + l2_penalty([a.weight], lam / 2)
    loss_a.backward()
    with torch.no_grad():
        a.weight -= lr * a.weight.grad
    ((b(x) - y) ** 2).mean().backward()
    w_before = b.weight.detach().clone()
    with torch.no_grad():
        b.weight -= lr * b.weight.grad
    decoupled_weight_decay_(b, lr, lam)
    # decoupled applies the decay to the updated weight: difference is O(lr^2 lam)
    bound = lr * lr * lam * w_before.abs().max().item() * 10
    torch.testing.assert_close(a.weight, b.weight, atol=bound, rtol=0)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        DecoupledWeightDecay(-1.0)


def test_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="alpha must be >= 0, got -1"):
        ridge(X, y, -1)
    with pytest.raises(ValueError, match="X must be 2-D"):
        lasso(X[:, 0], y)
    with pytest.raises(ValueError, match="y must have 80 rows"):
        ridge(X, y[:10])
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        l2_penalty(torch.nn.Linear(2, 2), -0.1)


def test_adam_plus_decoupled_decay_callback_is_torch_adamw():
    from dlterms.optim import Adam
    from dlterms.training import fit

    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randn(64, 2)
    ours, ref = torch.nn.Linear(5, 2), torch.nn.Linear(5, 2)
    ref.load_state_dict(ours.state_dict())
    fit(
        ours,
        (x, y),
        loss_fn=torch.nn.functional.mse_loss,
        optimizer=Adam(ours.parameters(), lr=0.05),
        epochs=5,
        batch_size=16,
        seed=0,
        callbacks=[DecoupledWeightDecay(0.1, all_parameters=True)],
    )
    fit(
        ref,
        (x, y),
        loss_fn=torch.nn.functional.mse_loss,
        optimizer=torch.optim.AdamW(ref.parameters(), lr=0.05, weight_decay=0.1),
        epochs=5,
        batch_size=16,
        seed=0,
    )
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        # 20 steps, each an MSE gradient over 16 examples of 5 inputs and an Adam update of ~8 operations
        assert_close_f32(p, q, n=20 * (16 * 5 + 8))
