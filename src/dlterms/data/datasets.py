"""Offline datasets as torch tensors: scikit-learn's bundled sets, MNIST-1D and 2-D toy sets.

Nothing is downloaded. MNIST-1D is generated locally by the `mnist1d` package with the paper's
default arguments (4000 training and 1000 test signals of length 40, 10 classes), and cached
per process.

Every loader returns a `Split` of float32 inputs and int64 labels. Splits are stratified and
seeded, so the same arguments give the same tensors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Split", "digits", "mnist1d", "moons", "circles", "train_val_split", "make_split"]


@dataclass
class Split:
    """Train and test tensors. Inputs are float32, labels int64 (or float32 for regression)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max().item()) + 1

    def to(self, device) -> Split:
        return Split(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device), self.y_test.to(device))

    def subset_train(self, n: int, seed: int = 0) -> Split:
        """The same test set, with `n` training examples drawn (stratified) from the training set."""
        if not 0 < n <= len(self.x_train):
            raise ValueError(f"n must be in 1..{len(self.x_train)}, got {n}")
        idx = _stratified_indices(self.y_train.numpy(), n, seed)
        return Split(self.x_train[idx], self.y_train[idx], self.x_test, self.y_test)


def _stratified_indices(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    if n == len(y):
        return np.random.default_rng(seed).permutation(len(y))
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, random_state=seed, stratify=y)
    return np.sort(idx)


def make_split(
    x: np.ndarray, y: np.ndarray, test_size: float | int = 0.25, seed: int = 0, stratify: bool = True
) -> Split:
    """Split arrays into a seeded (stratified) train/test Split of tensors."""
    from sklearn.model_selection import train_test_split

    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1) as a fraction, got {test_size}")
    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
    ydtype = torch.int64 if np.issubdtype(np.asarray(y).dtype, np.integer) else torch.float32
    return Split(
        torch.as_tensor(xtr, dtype=torch.float32),
        torch.as_tensor(ytr, dtype=ydtype),
        torch.as_tensor(xte, dtype=torch.float32),
        torch.as_tensor(yte, dtype=ydtype),
    )


def train_val_split(x: torch.Tensor, y: torch.Tensor, val_fraction: float = 0.2, seed: int = 0):
    """(x_train, y_train, x_val, y_val), stratified when y is integer."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    from sklearn.model_selection import train_test_split

    strat = y.numpy() if y.dtype == torch.int64 else None
    tr, va = train_test_split(np.arange(len(y)), test_size=val_fraction, random_state=seed, stratify=strat)
    tr, va = torch.as_tensor(np.sort(tr)), torch.as_tensor(np.sort(va))
    return x[tr], y[tr], x[va], y[va]


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float32) / 16.0, d.target.astype(np.int64)


def digits(test_size: float | int = 0.25, seed: int = 0, images: bool = False) -> Split:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), pixels scaled to [0, 1].

    Args:
        images: shape inputs as (N, 1, 8, 8) for convolutional models instead of (N, 64).
    """
    x, y = _digits_arrays()
    s = make_split(x, y, test_size=test_size, seed=seed)
    if images:
        s = Split(s.x_train.view(-1, 1, 8, 8), s.y_train, s.x_test.view(-1, 1, 8, 8), s.y_test)
    return s


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(seed: int):
    """Generate MNIST-1D (a few seconds), cached per process and on disk (DLTERMS_CACHE or
    ~/.cache/dlterms), keyed by the generator's version and seed."""
    import io
    from importlib.metadata import version

    from dlterms.results import cache_dir

    path = cache_dir() / f"mnist1d-{version('mnist1d')}-seed{seed}.npz"
    if path.exists():
        try:
            with np.load(path) as d:
                return d["x"], d["y"], d["x_test"], d["y_test"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is regenerated below
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    d = make_dataset(args)
    arrays = (
        d["x"].astype(np.float32),
        d["y"].astype(np.int64),
        d["x_test"].astype(np.float32),
        d["y_test"].astype(np.int64),
    )
    try:
        from dlterms.results import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, x=arrays[0], y=arrays[1], x_test=arrays[2], y_test=arrays[3])
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # a read-only home still works, just slower
    return arrays


def mnist1d(seed: int = 42, channels: bool = False) -> Split:
    """MNIST-1D (Greydanus, 2020): 4000 train / 1000 test signals of length 40, 10 classes.

    `seed` is the generator's seed (42 is the paper's default dataset). `channels=True` gives
    (N, 1, 40) inputs for 1-D convolutions and recurrent models.
    """
    x, y, xt, yt = _mnist1d_arrays(seed)
    s = Split(
        torch.from_numpy(x.copy()), torch.from_numpy(y.copy()), torch.from_numpy(xt.copy()), torch.from_numpy(yt.copy())
    )
    if channels:
        s = Split(s.x_train.unsqueeze(1), s.y_train, s.x_test.unsqueeze(1), s.y_test)
    return s


def moons(n: int = 1000, noise: float = 0.2, test_size: float = 0.3, seed: int = 0) -> Split:
    """scikit-learn's two interleaving half-circles."""
    from sklearn.datasets import make_moons

    if n < 4:
        raise ValueError(f"n must be >= 4, got {n}")
    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return make_split(x.astype(np.float32), y.astype(np.int64), test_size=test_size, seed=seed)


def circles(n: int = 1000, noise: float = 0.1, factor: float = 0.5, test_size: float = 0.3, seed: int = 0) -> Split:
    """scikit-learn's two concentric circles."""
    from sklearn.datasets import make_circles

    if n < 4:
        raise ValueError(f"n must be >= 4, got {n}")
    x, y = make_circles(n_samples=n, noise=noise, factor=factor, random_state=seed)
    return make_split(x.astype(np.float32), y.astype(np.int64), test_size=test_size, seed=seed)
