"""Pruning against torch.nn.utils.prune: global and per-layer L1 (magnitude) masks, L2 structured
row selection; masks survive fine-tuning; a structurally pruned network computes what the masked
original computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.utils.prune as tprune

from _tolerance import assert_close_f32
from dlterms.methods.pruning import (
    MaskCallback,
    apply_masks,
    magnitude_masks,
    prune_neurons,
    sparsity,
)
from dlterms.training import fit


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3)
    )


def test_global_masks_match_torch_global_unstructured():
    ours_model, ref = _mlp(), _mlp()
    masks = magnitude_masks(ours_model, 0.7, scope="global")
    params = [(ref[i], "weight") for i in (0, 2, 4)]
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=0.7)
    for name, (mod, _) in zip(["0.weight", "2.weight", "4.weight"], params):
        assert torch.equal(masks[name], mod.weight_mask.bool())
    apply_masks(ours_model, masks)
    assert sparsity(ours_model) == pytest.approx(0.7, abs=1 / 350)


def test_layer_masks_match_torch_l1_unstructured():
    model, ref = _mlp(1), _mlp(1)
    masks = magnitude_masks(model, 0.5, scope="layer")
    for i in (0, 2, 4):
        tprune.l1_unstructured(ref[i], "weight", amount=0.5)
        assert torch.equal(masks[f"{i}.weight"], ref[i].weight_mask.bool())


def test_structured_rows_match_torch_ln_structured_and_outputs_match_masked_model():
    model = _mlp(2)
    ref = _mlp(2)
    tprune.ln_structured(ref[0], "weight", amount=0.25, n=2, dim=0)
    kept_ref = torch.nonzero(ref[0].weight_mask.sum(1)).flatten()
    new = prune_neurons([model[0], model[2], model[4]], 0.25, make_linear=torch.nn.Linear)
    assert [tuple(m.weight.shape) for m in new] == [(12, 8), (9, 12), (3, 9)]
    torch.testing.assert_close(new[0].weight, model[0].weight[kept_ref])
    # the small dense net equals the original with those units' incoming rows and biases zeroed
    with torch.no_grad():
        masked = _mlp(2)
        for layer, n in ((0, 16), (2, 12)):
            scores = masked[layer].weight.norm(dim=1)
            drop = torch.topk(scores, n - round(0.75 * n), largest=False).indices
            masked[layer].weight[drop] = 0
            masked[layer].bias[drop] = 0
    x = torch.randn(10, 8)
    small = torch.nn.Sequential(new[0], torch.nn.ReLU(), new[1], torch.nn.ReLU(), new[2])
    assert_close_f32(small(x), masked(x), n=8 + 12 + 9 + 2)  # the zeros leave the sums: their order changes


def test_masks_survive_fine_tuning():
    model = _mlp(3)
    masks = magnitude_masks(model, 0.8)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    fit(
        model,
        (x, y),
        loss_fn=torch.nn.functional.cross_entropy,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        epochs=3,
        batch_size=16,
        callbacks=[MaskCallback(masks)],
    )
    for name, p in model.named_parameters():
        if name in masks:
            assert torch.all(p[~masks[name]] == 0)
    assert sparsity(model) >= 0.8 - 1e-3


def test_default_layer_is_ours_and_errors():
    from dlterms.nn import Linear

    new = prune_neurons([torch.nn.Linear(4, 6), torch.nn.Linear(6, 2)], 0.5)
    assert isinstance(new[0], Linear) and new[0].weight.shape == (3, 4)
    with pytest.raises(ValueError, match="amount"):
        magnitude_masks(_mlp(), 1.0)
    with pytest.raises(ValueError, match="scope"):
        magnitude_masks(_mlp(), 0.5, scope="row")
    with pytest.raises(ValueError, match="at least two"):
        prune_neurons([torch.nn.Linear(2, 2)], 0.5)
