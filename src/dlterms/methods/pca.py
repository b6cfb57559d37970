r"""Principal component analysis (PCA) by the singular value decomposition.

Pearson (1901), "On lines and planes of closest fit to systems of points in space"; Hotelling (1933).
Rows are examples (batch first): $X \in \mathbb{R}^{n \times d}$.

Centre the data, $\bar X = X - \mathbf{1}\mu^\top$ with $\mu = \frac{1}{n}\sum_i x_i$, and take its thin SVD

$$\bar X = U S V^\top .$$

The principal components are the rows of $V^\top$ (the eigenvectors of the covariance matrix
$C = \bar X^\top \bar X / (n-1)$), and the variance along component $i$ is its eigenvalue

$$\lambda_i = \frac{s_i^2}{n-1}, \qquad \text{ratio}_i = \frac{\lambda_i}{\sum_j \lambda_j}.$$

Keeping the top $k$ components, the projection and the reconstruction are

$$z = (x - \mu) V_k, \qquad \hat x = z V_k^\top + \mu ,$$

and the squared reconstruction error summed over examples, divided by $n-1$, equals the sum of the
discarded eigenvalues, $\sum_{i>k} \lambda_i$ (Eckart-Young). The projections are uncorrelated:
their covariance is $\operatorname{diag}(\lambda_1..\lambda_k)$.

Signs of singular vectors are arbitrary; like scikit-learn we fix them so that the entry of largest
absolute value in each row of $U$ is positive (`svd_flip`), so results are deterministic.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["PCA"]


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"X must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.double()
    return x


class PCA:
    """PCA with scikit-learn's interface: `fit`, `transform`, `fit_transform`, `inverse_transform`.

    Args:
        n_components: number of components kept (default: min(n_samples, n_features)).

    Attributes after `fit` (torch tensors in the input's dtype):
        mean_ (d,), components_ (k, d), explained_variance_ (k,), explained_variance_ratio_ (k,),
        singular_values_ (k,), all_explained_variance_ (all min(n, d) eigenvalues, so the discarded
        ones are available), noise_variance_ (mean of the discarded eigenvalues, as scikit-learn).
    """

    def __init__(self, n_components: int | None = None):
        if n_components is not None and (not isinstance(n_components, int | np.integer) or n_components < 1):
            raise ValueError(f"n_components must be a positive integer or None, got {n_components!r}")
        self.n_components = n_components

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components})"

    def fit(self, X) -> PCA:
        X = _as_tensor(X)
        n, d = X.shape
        if n < 2:
            raise ValueError(f"PCA needs at least 2 samples to estimate a variance, got {n}")
        k = self.n_components if self.n_components is not None else min(n, d)
        if k > min(n, d):
            raise ValueError(f"n_components must be <= min(n_samples, n_features) = {min(n, d)}, got {k}")
        self.mean_ = X.mean(dim=0)  # mu, (d,)
        Xc = X - self.mean_  # centred data, (n, d)
        U, S, Vt = torch.linalg.svd(Xc, full_matrices=False)  # (n, r), (r,), (r, d) with r = min(n, d)
        # Deterministic signs: largest-|.| entry of each column of U positive (scikit-learn's svd_flip).
        rows = U.abs().argmax(dim=0)  # (r,)
        signs = torch.sign(U[rows, torch.arange(U.shape[1])])
        signs[signs == 0] = 1
        U, Vt = U * signs, Vt * signs[:, None]
        # lambda_i = s_i^2 / (n - 1)
        lam = S**2 / (n - 1)  # (r,)
        self.n_samples_, self.n_features_in_ = n, d
        self.n_components_ = k
        self.components_ = Vt[:k]  # (k, d)
        self.singular_values_ = S[:k]
        self.all_explained_variance_ = lam
        self.explained_variance_ = lam[:k]
        total = Xc.pow(2).sum() / (n - 1)  # trace of the covariance = sum of all eigenvalues
        self.explained_variance_ratio_ = lam[:k] / total
        self.noise_variance_ = lam[k:].mean() if k < min(n, d) else torch.zeros((), dtype=X.dtype)
        return self

    def _check_fitted(self, X) -> torch.Tensor:
        if not hasattr(self, "components_"):
            raise RuntimeError("this PCA is not fitted yet: call fit(X) first")
        X = _as_tensor(X)
        return X

    def transform(self, X) -> torch.Tensor:
        """z = (x - mu) V_k, shape (n, k)."""
        X = self._check_fitted(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but PCA was fitted with {self.n_features_in_}")
        return (X.to(self.mean_.dtype) - self.mean_) @ self.components_.T  # (n, d) @ (d, k) -> (n, k)

    def fit_transform(self, X) -> torch.Tensor:
        return self.fit(X).transform(X)

    def inverse_transform(self, Z) -> torch.Tensor:
        """x_hat = z V_k^T + mu, shape (n, d)."""
        Z = self._check_fitted(Z)
        if Z.shape[1] != self.n_components_:
            raise ValueError(f"Z has {Z.shape[1]} columns, but PCA keeps {self.n_components_} components")
        return Z.to(self.mean_.dtype) @ self.components_ + self.mean_  # (n, k) @ (k, d) -> (n, d)
