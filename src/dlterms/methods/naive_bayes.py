r"""Gaussian naive Bayes: a generative classifier.

It models how each class generates its inputs, with features independent given the class and each
one Gaussian (the "naive" assumption), and classifies by Bayes' rule:

$$p(x, y = c) = \pi_c \prod_{j=1}^{d} \mathcal{N}(x_j;\ \mu_{cj}, \sigma^2_{cj}),$$

$$\hat y = \arg\max_c\ \log \pi_c
  - \frac12 \sum_j \left[\log(2\pi\sigma^2_{cj}) + \frac{(x_j - \mu_{cj})^2}{\sigma^2_{cj}}\right].$$

Fitting is closed-form maximum likelihood: $\pi_c = n_c / n$, $\mu_{cj}$ the class mean and
$\sigma^2_{cj}$ the (biased) class variance of feature $j$, plus $\epsilon = $ `var_smoothing`
$\times \max_j \operatorname{Var}(x_j)$ so constant features do not give zero variance (as
scikit-learn's `GaussianNB`). With few examples it needs only $2d$ numbers per class, which is why it
can beat a discriminative model trained on the same data (Ng & Jordan, 2002, "On discriminative vs.
generative classifiers"). Inputs are (batch, features).
"""

from __future__ import annotations

import math

import torch

__all__ = ["GaussianNB"]


class GaussianNB:
    """Gaussian naive Bayes with scikit-learn's interface (`fit`, `predict`, `predict_log_proba`)."""

    def __init__(self, var_smoothing: float = 1e-9):
        if not var_smoothing >= 0:
            raise ValueError(f"var_smoothing must be >= 0, got {var_smoothing}")
        self.var_smoothing = var_smoothing

    def __repr__(self) -> str:
        return f"GaussianNB(var_smoothing={self.var_smoothing})"

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> GaussianNB:
        X, y = torch.as_tensor(X).double(), torch.as_tensor(y).long()
        if X.dim() != 2 or y.dim() != 1 or len(X) != len(y):
            raise ValueError(f"X must be (n, d) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}")
        self.classes_ = torch.unique(y)  # sorted labels
        if len(self.classes_) < 2:
            raise ValueError(f"need at least 2 classes to classify, got {len(self.classes_)}")
        onehot = (y[:, None] == self.classes_[None, :]).double()  # (n, C)
        n_c = onehot.sum(dim=0)  # (C,)
        self.class_prior_ = n_c / len(y)  # pi_c
        self.theta_ = (onehot.T @ X) / n_c[:, None]  # mu_cj, (C, d)
        sq = (onehot.T @ X.pow(2)) / n_c[:, None]  # E[x^2 | c], (C, d)
        self.epsilon_ = self.var_smoothing * float(X.var(dim=0, unbiased=False).max())
        self.var_ = (sq - self.theta_.pow(2)).clamp_min(0) + self.epsilon_  # sigma^2_cj, (C, d)
        return self

    def joint_log_likelihood(self, X: torch.Tensor) -> torch.Tensor:
        """log pi_c + sum_j log N(x_j; mu_cj, sigma^2_cj), shape (n, C)."""
        if not hasattr(self, "theta_"):
            raise RuntimeError("this GaussianNB is not fitted yet: call fit(X, y) first")
        X = torch.as_tensor(X).double()
        log_norm = -0.5 * torch.log(2 * math.pi * self.var_).sum(dim=1)  # (C,)
        # sum_j (x_j - mu_cj)^2 / sigma^2_cj for every (example, class): (n, 1, d) - (1, C, d) -> (n, C)
        maha = ((X[:, None, :] - self.theta_[None]).pow(2) / self.var_[None]).sum(dim=2)
        return torch.log(self.class_prior_)[None, :] + log_norm[None, :] - 0.5 * maha

    def predict_log_proba(self, X: torch.Tensor) -> torch.Tensor:
        """log p(y = c | x) by Bayes' rule (normalised over classes), (n, C)."""
        jll = self.joint_log_likelihood(X)
        return jll - torch.logsumexp(jll, dim=1, keepdim=True)

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        jll = self.joint_log_likelihood(X)
        return self.classes_[jll.argmax(dim=1)]

    def score(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy."""
        return float((self.predict(X) == torch.as_tensor(y)).double().mean())
