"""The data set-ups the generalisation experiments build: noisy digits and parity strings."""

import torch

from dlterms.data.seqtasks import parity_strings
from dlterms.experiments.generalization._common import OverfitConfig, noisy_digits


def test_noisy_digits_corrupts_exactly_the_asked_fraction_to_other_classes():
    cfg = OverfitConfig()
    split, y_noisy = noisy_digits(cfg, seed=0)
    assert len(split.x_train) == cfg.n_train and len(split.x_test) == 1797 - cfg.n_train
    wrong = int((y_noisy != split.y_train).sum())
    assert wrong == round(cfg.label_noise * cfg.n_train)  # every corrupted label really changed class
    assert torch.equal(noisy_digits(cfg, seed=0)[1], y_noisy)


def test_parity_strings_left_padded_and_labelled():
    x, y, length = parity_strings(200, 12, seed=0)
    assert x.shape == (200, 12, 3) and torch.all(x.sum(2) == 1)  # one-hot: pad, 0, 1
    pad = x[..., 0].bool()
    assert torch.equal(pad.sum(1), 12 - length)
    assert torch.all(~pad[torch.arange(200), -1])  # the last position is always a real bit
    assert torch.equal(y, x[..., 2].sum(1).long() % 2)
    assert length.min() >= 1 and length.max() <= 12
