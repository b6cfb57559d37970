"""The few-shot transfer set-up's fast path: many draws' models trained side by side equal the same
models trained one after another (vision/_common.py, used by fine-tuning and transfer-learning)."""

import pytest
import torch

from dlterms.data.datasets import Split
from dlterms.experiments.vision._common import (
    few_shot_comparison,
    few_shot_model,
    few_shot_models,
)
from dlterms.models.cnn import mnist1d_cnn
from dlterms.nn import Conv1d, Dropout
from dlterms.run import Run
from dlterms.stacked import side_by_side_body


def _task(n_train=60, n_test=40, seed=0) -> Split:
    """Random length-40 signals with a class-dependent bump, labels 0-4 (learnable, so training moves)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_train + n_test) % 5
    x = torch.randn(n_train + n_test, 1, 40, generator=g, dtype=torch.get_default_dtype())
    x[torch.arange(len(y)), 0, 5 + 6 * y] += 2.0
    return Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def _pretrained() -> torch.nn.Module:
    """A source CNN with non-trivial weights and batch-norm running statistics."""
    torch.manual_seed(7)
    model = mnist1d_cnn(n_classes=5)
    src = _task(seed=1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(src.x_train)  # updates the running statistics
    return model


@pytest.mark.parametrize("mode", ["frozen", "fine-tune", "scratch"])
def test_side_by_side_models_equal_sequential_float64(float64, mode):
    run = Run("fine-tuning", seed=3)
    pre, target = _pretrained(), _task()
    draws = [target.subset_train(10, seed=run.seed + k) for k in range(3)]
    alone = few_shot_models(run, pre, draws, mode, side_by_side=False)
    joint = few_shot_models(run, pre, draws, mode, side_by_side=True)
    moved = 0.0
    for k, (a, b) in enumerate(zip(alone, joint)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for name in sa:
            # float64, 50 Adam steps on 10 examples: only summation order differs. A conv bias
            # followed by batch norm has a true gradient of about 0, and Adam divides its
            # rounding-level gradient by its own size, so those biases (and the running means they
            # shift) differ by up to 4e-10 on one of our CPUs (atol 1e-10 held on another): atol 1e-8,
            # still far below what training moved (> 1e-2, asserted below).
            torch.testing.assert_close(sb[name], sa[name], rtol=1e-9, atol=1e-8, msg=f"draw {k}, {name}")
        torch.manual_seed(run.seed + k)
        init = few_shot_model(pre, mode)[0].state_dict()
        moved = max(moved, max(float((sa[n].double() - init[n].double()).abs().max()) for n in sa))
    assert moved > 1e-2  # training changed the models, so the comparison means something
    # the pretrained network is left as it was
    torch.testing.assert_close(pre.state_dict(), _pretrained().state_dict(), rtol=0, atol=0)


def test_few_shot_comparison_same_accuracies_both_paths(float64):
    run = Run("fine-tuning", seed=0)
    pre, target = _pretrained(), _task()
    modes = ("frozen", "fine-tune", "scratch")
    fast = few_shot_comparison(run, pre, target, 2, modes, n_draws=4)
    slow = few_shot_comparison(run, pre, target, 2, modes, n_draws=4, side_by_side=False)
    assert fast == slow
    assert all(len(v) == 4 for v in fast.values())


def test_side_by_side_body_is_each_body_on_its_own_channels():
    torch.manual_seed(0)
    bodies = [mnist1d_cnn(n_classes=5).features for _ in range(3)]
    for b in bodies:  # non-trivial running statistics, then evaluation mode
        b.train()(torch.randn(8, 1, 40))
        b.eval()
    joint = side_by_side_body(bodies).eval()
    x = torch.randn(3, 6, 1, 40)  # (M, B, C, L)
    out = joint(x.transpose(0, 1).flatten(1, 2)).flatten(1).view(6, 3, -1)  # (B, M, d)
    for k, b in enumerate(bodies):
        want = b(x[k]).flatten(1)  # (B, d)
        # float32 sums of at most 32*3 = 96 products per output
        torch.testing.assert_close(out[:, k], want, rtol=1e-5, atol=1e-5)


def test_bad_input():
    run = Run("fine-tuning", seed=0)
    pre, target = mnist1d_cnn(n_classes=5), _task()
    with pytest.raises(ValueError, match="mode must be one of"):
        few_shot_model(pre, "linear-probe")
    with pytest.raises(ValueError, match="draws of one size"):
        few_shot_models(run, pre, [target.subset_train(10), target.subset_train(15)], "frozen")
    with pytest.raises(ValueError, match="at least one labelled set"):
        few_shot_models(run, pre, [], "frozen")
    with pytest.raises(ValueError, match="n_draws must be >= 1"):
        few_shot_comparison(run, pre, target, 2, ("frozen",), n_draws=0)
    with pytest.raises(ValueError, match="cannot put a Dropout side by side"):
        side_by_side_body([torch.nn.Sequential(Dropout(0.1))] * 2)
    with pytest.raises(ValueError, match="groups=2"):
        side_by_side_body([torch.nn.Sequential(Conv1d(2, 2, 3, groups=2))] * 2)
