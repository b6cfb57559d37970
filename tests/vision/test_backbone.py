"""Backbone: shared modules, freezing (no grads, frozen BN statistics), heads."""

from __future__ import annotations

import copy

import pytest
import torch

from dlterms.models.backbone import Backbone, MultiHead, trainable_parameters
from dlterms.models.cnn import digits_cnn


def test_from_model_shares_modules_and_features_match():
    m = digits_cnn()
    bb = Backbone.from_model(m)
    assert bb.features is m.features and bb.out_features == 128
    x = torch.randn(4, 1, 8, 8)
    m.eval()
    bb.eval()
    torch.testing.assert_close(m.head(bb(x)), m(x))


def test_frozen_backbone_does_not_change_while_heads_train():
    torch.manual_seed(0)
    bb = Backbone.from_model(digits_cnn()).freeze()
    before = copy.deepcopy(bb.state_dict())
    model = MultiHead(bb, {"a": torch.nn.Linear(128, 3), "b": torch.nn.Linear(128, 2)})
    model.train()
    assert not bb.features.training  # BN stays in eval mode
    opt = torch.optim.SGD(trainable_parameters(model), lr=0.1)
    assert len(trainable_parameters(model)) == 4  # two heads' weights and biases
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x, head="a"), y).backward()
        opt.step()
    after = bb.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    bb.unfreeze()
    model.train()
    assert bb.features.training and len(trainable_parameters(model)) > 4
    assert model.head("b")(x).shape == (16, 2)


def test_errors():
    bb = Backbone.from_model(digits_cnn())
    with pytest.raises(ValueError, match="give at least one head"):
        MultiHead(bb, {})
    with pytest.raises(ValueError, match="no head named 'c'"):
        MultiHead(bb, {"a": torch.nn.Linear(128, 3)})(torch.zeros(1, 1, 8, 8), head="c")
    with pytest.raises(ValueError, match="has no `features`"):
        Backbone.from_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="features have 128 dimensions"):
        Backbone(digits_cnn().features, 64)(torch.zeros(1, 1, 8, 8))


def test_freeze_batch_norm_keeps_statistics_but_trains_weights():
    torch.manual_seed(0)
    bb = Backbone.from_model(digits_cnn()).freeze_batch_norm()
    stats = {k: v.clone() for k, v in bb.state_dict().items() if "running" in k}
    w = bb.features[0].weight.clone()
    bb.train()
    opt = torch.optim.SGD(trainable_parameters(bb), lr=0.1)
    bb(torch.randn(8, 1, 8, 8)).square().mean().backward()
    opt.step()
    assert all(torch.equal(stats[k], bb.state_dict()[k]) for k in stats)
    assert not torch.equal(w, bb.features[0].weight)
