"""Curriculum sampler: pacing, pool sizes, reproducibility, errors."""

import pytest
import torch

from dlterms.data.samplers import CurriculumSampler, step_pacing


def test_step_pacing_by_hand():
    lam = step_pacing(2, 1, 20)
    assert [lam(t) for t in (0, 19, 20, 45)] == [2, 2, 3, 4]


def test_batches_only_draw_from_the_allowed_pool():
    difficulty = torch.arange(1, 41).repeat_interleave(5)  # 5 examples of each difficulty 1..40
    s = CurriculumSampler(difficulty, batch_size=16, pacing=step_pacing(2, 1, 10), seed=0)
    for t, idx in enumerate(s.batches(100)):
        assert difficulty[idx].max().item() <= 2 + t // 10
        assert s.pool_size(t) == 5 * min(40, 2 + t // 10)
    assert s.pool_size(10_000) == len(difficulty)


def test_no_pacing_is_uniform_random_order_and_seeded():
    difficulty = torch.rand(200)
    s = CurriculumSampler(difficulty, 50, None, seed=1)
    idx = s.indices(40)
    assert idx.shape == (2000,)
    assert len(set(idx.tolist())) > 180  # all of the set is reachable from the first step
    assert torch.equal(idx, CurriculumSampler(difficulty, 50, None, seed=1).indices(40))


def test_errors():
    with pytest.raises(ValueError, match="no example has difficulty <= pacing"):
        list(CurriculumSampler(torch.tensor([3.0, 4.0]), 2, step_pacing(1, 1, 10)).batches(1))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        CurriculumSampler(torch.ones(3), 0)
    with pytest.raises(ValueError, match="every must be >= 1"):
        step_pacing(1, 1, 0)
    with pytest.raises(ValueError, match="difficulty must be a non-empty 1-D"):
        CurriculumSampler(torch.ones(2, 2), 1)
