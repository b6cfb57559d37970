"""Embedding against torch.nn.Embedding: forward, dense and row-sparse gradients, padding_idx."""

import pytest
import torch
import torch.nn.functional as F

from dlterms.nn.embedding import Embedding


def _pair(V=10, d=4, padding_idx=None, sparse=False):
    torch.manual_seed(0)
    ref = torch.nn.Embedding(V, d, padding_idx=padding_idx, sparse=sparse)
    ours = Embedding(V, d, padding_idx=padding_idx, sparse=sparse)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_forward_and_gradients_equal_torch(sparse, padding_idx):
    ours, ref = _pair(padding_idx=padding_idx, sparse=sparse)
    idx = torch.tensor([[1, 2, 0, 9], [2, 2, 5, 0]])
    g = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(1))
    yo, yr = ours(idx), ref(idx)
    torch.testing.assert_close(yo, yr, atol=0, rtol=0)
    (yo * g).sum().backward()
    (yr * g).sum().backward()
    assert ours.weight.grad.is_sparse == ref.weight.grad.is_sparse == sparse
    go, gr = ours.weight.grad, ref.weight.grad
    if sparse:
        go, gr = go.coalesce(), gr.coalesce()
        assert go.indices().tolist() == gr.indices().tolist()  # the same rows carry gradient
        go, gr = go.to_dense(), gr.to_dense()
    torch.testing.assert_close(go, gr, atol=1e-6, rtol=0)
    if padding_idx is not None:
        assert (ours.weight.grad.to_dense()[padding_idx] == 0).all()


def test_lookup_equals_one_hot_times_matrix():
    emb = Embedding(7, 3)
    idx = torch.tensor([3, 0, 6, 3])
    torch.testing.assert_close(emb(idx), F.one_hot(idx, 7).float() @ emb.weight, atol=0, rtol=0)


def test_sparse_adam_trains_only_looked_up_rows():
    ours, _ = _pair(V=20, sparse=True)
    before = ours.weight.detach().clone()
    opt = torch.optim.SparseAdam(ours.parameters(), lr=0.1)
    ours(torch.tensor([3, 4, 3])).sum().backward()
    opt.step()
    changed = (ours.weight.detach() != before).any(1)
    assert changed.nonzero().flatten().tolist() == [3, 4]


def test_from_pretrained_and_repr():
    w = torch.arange(6.0).view(3, 2)
    emb = Embedding.from_pretrained(w, padding_idx=1)
    assert not emb.weight.requires_grad
    torch.testing.assert_close(emb(torch.tensor([2])), w[2:])
    assert "padding_idx=1" in repr(emb)


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding_idx"):
        Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="num_embeddings"):
        Embedding(0, 2)
    emb = Embedding(5, 2)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 5\)"):
        emb(torch.tensor([5]))
    with pytest.raises(ValueError, match="integer"):
        emb(torch.tensor([1.0]))
