r"""L2-regularised logistic regression, a discriminative classifier, fitted exactly by Newton's method.

It models $p(y \mid x)$ directly and nothing about $x$. With $K = 2$ classes (one weight vector, as
scikit-learn's binary `LogisticRegression`), $p(y = 1 \mid x) = \sigma(x^\top w + b)$; with $K > 2$
(multinomial), $p(y = c \mid x) = \operatorname{softmax}(x^\top W + b)_c$ with one column of $W$ per
class. The fit minimises scikit-learn's objective, with inverse regularisation strength $C$ and sample
weights $s_i$ (0 removes a row, which lets models with different training sets share one tensor):

$$f(W, b) = C \sum_i s_i \,\big(-\log p(y_i \mid x_i)\big) + \tfrac12 \lVert W \rVert_F^2 .$$

$f$ is convex, so Newton's method from $W = 0$ reaches its minimum in a few steps (iteratively
reweighted least squares). With $\tilde x = [x; 1]$, $\theta$ the flattened $(W; b)$ and
$p_i$ the predicted probabilities, the gradient and Hessian are

$$g = C \sum_i s_i\, (p_i - e_{y_i}) \otimes \tilde x_i + R\,\theta, \qquad
  H = C \sum_i s_i\, \big(\operatorname{diag}(p_i) - p_i p_i^\top\big) \otimes \tilde x_i \tilde x_i^\top + R,$$

($K = 2$: $p_i$ is the scalar $\sigma_i$ and the bracket is $\sigma_i(1 - \sigma_i)$), where $R$ is the
identity on the weights and 0 on the biases. Each step solves $H\,\delta = g$, halving $\delta$ until
$f$ decreases. Many independent models are fitted at once: inputs (M, n, d), one $C$ per model.
"""

from __future__ import annotations

import torch

__all__ = ["LogisticRegression", "fit_logistic_regression", "logistic_regression_proba"]


def _probs(theta: torch.Tensor, xt: torch.Tensor, k: int) -> torch.Tensor:
    """p (M, n, K) from theta (M, d+1, K') and xt (M, n, d+1), K' = 1 for two classes."""
    z = xt @ theta  # (M, n, K')
    if k == 2:
        s = torch.sigmoid(z[..., 0])
        return torch.stack([1 - s, s], dim=-1)
    return torch.softmax(z, dim=-1)


def _objective(theta, xt, onehot, sw, c, k, reg) -> torch.Tensor:
    """f per model, (M,)."""
    z = xt @ theta  # (M, n, K')
    if k == 2:
        y1 = onehot[..., 1]
        nll = torch.nn.functional.softplus(z[..., 0]) - y1 * z[..., 0]  # -log p(y | x) for a sigmoid
    else:
        nll = torch.logsumexp(z, dim=-1) - (onehot * z).sum(-1)  # -log softmax(z)_y
    pen = 0.5 * (reg * theta.pow(2)).sum(dim=(1, 2))  # 1/2 ||W||^2 (biases not penalised)
    return c * (sw * nll).sum(1) + pen


def fit_logistic_regression(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    C: float | torch.Tensor = 1.0,
    sample_weight: torch.Tensor | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit M independent logistic regressions by damped Newton steps, in float64.

    Args:
        x: (M, n, d) inputs (or (n, d) for one model).
        y: (M, n) integer labels in 0..n_classes-1 (or (n,)).
        n_classes: K >= 2 (2: binary sigmoid model; more: multinomial softmax).
        C: inverse regularisation strength, one value or one per model (M,).
        sample_weight: (M, n) non-negative row weights (default 1).
        max_iter: Newton steps at most.
        tol: stop when every model's largest |gradient| component is below tol * (1 + C * n).

    Returns:
        (coef, intercept): (M, d, K') and (M, K'), K' = 1 for two classes (scikit-learn's layout
        transposed), or without the M dimension for unbatched input.
    """
    single = x.dim() == 2
    if single:
        x, y = x[None], y[None]
        sample_weight = None if sample_weight is None else sample_weight[None]
    if x.dim() != 3 or y.shape != x.shape[:2]:
        raise ValueError(f"x must be (M, n, d) and y (M, n), got {tuple(x.shape)} and {tuple(y.shape)}")
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    y = y.long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {int(y.min())}..{int(y.max())}")
    m, n, d = x.shape
    c = torch.as_tensor(C, dtype=torch.float64).expand(m).clone()
    if not bool((c > 0).all()):
        raise ValueError(f"C must be > 0, got {C}")
    sw = torch.ones(m, n, dtype=torch.float64) if sample_weight is None else sample_weight.double()
    if sw.shape != (m, n) or bool((sw < 0).any()):
        raise ValueError(f"sample_weight must be (M, n) and non-negative, got shape {tuple(sw.shape)}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    k, kp = n_classes, (1 if n_classes == 2 else n_classes)
    xt = torch.cat([x.double(), torch.ones(m, n, 1, dtype=torch.float64)], dim=2)  # x~ = [x; 1], (M, n, d+1)
    onehot = torch.nn.functional.one_hot(y, k).double()  # e_y, (M, n, K)
    reg = torch.ones(1, d + 1, kp, dtype=torch.float64)
    reg[:, d] = 0.0  # R: identity on the weights, 0 on the biases
    p_dim = (d + 1) * kp
    theta = torch.zeros(m, d + 1, kp, dtype=torch.float64)
    f = _objective(theta, xt, onehot, sw, c, k, reg)
    scale = 1.0 + c * sw.sum(1)  # (M,)
    cw = (c[:, None] * sw)[..., None]  # C s_i, (M, n, 1)
    for _ in range(max_iter):
        p = _probs(theta, xt, k)  # (M, n, K)
        if k == 2:
            r = p[..., 1:] - onehot[..., 1:]  # sigma_i - y_i, (M, n, 1)
            a = (p[..., 1] * p[..., 0])[..., None, None]  # sigma (1 - sigma), (M, n, 1, 1)
        else:
            r = p - onehot  # p_i - e_{y_i}, (M, n, K)
            a = torch.diag_embed(p) - p[..., :, None] * p[..., None, :]  # diag(p) - p p^T, (M, n, K, K)
        g = xt.transpose(1, 2) @ (cw * r) + reg * theta  # (M, d+1, K')
        if float((g.abs().amax(dim=(1, 2)) / scale).max()) < tol:
            break
        # H[(j, c), (j', c')] = C sum_i s_i x~_ij x~_ij' a_i[c, c'] + R, as (M, (d+1) K', (d+1) K')
        h = torch.einsum("mnj,mncd,mnk->mjckd", xt * cw, a, xt).reshape(m, p_dim, p_dim)
        h = h + torch.diag_embed(reg.expand(m, -1, -1).reshape(m, p_dim))
        # the multinomial biases are free along (1, ..., 1) (softmax ignores a common shift): a tiny
        # ridge keeps H invertible; g has no component along that direction, so nothing moves there
        h = h + 1e-12 * torch.eye(p_dim, dtype=torch.float64) * h.diagonal(dim1=1, dim2=2).amax(1)[:, None, None]
        step = torch.linalg.solve(h, g.reshape(m, p_dim)).reshape(m, d + 1, kp)  # H delta = g
        t = torch.ones(m, dtype=torch.float64)
        for _ in range(30):  # halve the step until f decreases (or stays, at the optimum)
            new = theta - t[:, None, None] * step
            f_new = _objective(new, xt, onehot, sw, c, k, reg)
            bad = f_new > f + 1e-12 * f.abs()
            if not bool(bad.any()):
                break
            t = torch.where(bad, t / 2, t)
        keep = f_new > f + 1e-12 * f.abs()  # no decrease found: stay
        theta = torch.where(keep[:, None, None], theta, new)
        f = torch.where(keep, f, f_new)
    coef, intercept = theta[:, :d], theta[:, d]
    if kp > 1:  # softmax ignores a common shift of the biases: report the one with sum 0
        intercept = intercept - intercept.mean(1, keepdim=True)
    return (coef[0], intercept[0]) if single else (coef, intercept)


def logistic_regression_proba(coef: torch.Tensor, intercept: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """p(y | x) (M, n, K) of fitted models (coef (M, d, K'), intercept (M, K')) on x (M, n, d) or (n, d)
    (the same rows for every model); unbatched coef gives (n, K)."""
    single = coef.dim() == 2
    if single:
        coef, intercept = coef[None], intercept[None]
    if x.dim() == 2:
        x = x.expand(coef.shape[0], -1, -1)
    z = x.double() @ coef + intercept[:, None, :]  # (M, n, K')
    p = torch.stack([torch.sigmoid(-z[..., 0]), torch.sigmoid(z[..., 0])], -1) if z.shape[-1] == 1 else z.softmax(-1)
    return p[0] if single else p


class LogisticRegression:
    """One L2-regularised logistic regression with scikit-learn's interface (`fit`, `predict_proba`,
    `predict`, `score`, `coef_` (K', d), `intercept_` (K',)) and its objective (same C)."""

    def __init__(self, C: float = 1.0, max_iter: int = 100, tol: float = 1e-10):
        if not C > 0:
            raise ValueError(f"C must be > 0, got {C}")
        self.C, self.max_iter, self.tol = C, max_iter, tol

    def __repr__(self) -> str:
        return f"LogisticRegression(C={self.C})"

    def fit(self, X, y, sample_weight=None) -> LogisticRegression:
        X, y = torch.as_tensor(X).double(), torch.as_tensor(y).long()
        if X.dim() != 2 or y.dim() != 1 or len(X) != len(y):
            raise ValueError(f"X must be (n, d) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}")
        self.classes_ = torch.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least 2 classes to classify, got {len(self.classes_)}")
        idx = torch.searchsorted(self.classes_, y)
        sw = None if sample_weight is None else torch.as_tensor(sample_weight).double()
        self._coef, self._intercept = fit_logistic_regression(
            X, idx, len(self.classes_), self.C, sw, self.max_iter, self.tol
        )
        self.coef_, self.intercept_ = self._coef.T, self._intercept
        return self

    def predict_proba(self, X) -> torch.Tensor:
        return logistic_regression_proba(self._coef, self._intercept, torch.as_tensor(X).double())

    def predict(self, X) -> torch.Tensor:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X, y) -> float:
        return float((self.predict(X) == torch.as_tensor(y)).double().mean())
