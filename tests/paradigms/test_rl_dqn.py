"""Replay buffers (ring overwrite, uniform and prioritised sampling against brute force), DQN targets,
updates and target-network synchronisation, and the training loop's stopping rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.rl.dqn import DQN
from dlterms.rl.gridworld import GridWorld
from dlterms.rl.loop import train
from dlterms.rl.replay import PrioritizedReplayBuffer, ReplayBuffer, SumTree
from dlterms.rl.tabular import QLearning


def _fill(buf, n):
    for i in range(n):
        buf.push([float(i), 0.0], i % 2, float(i), [float(i + 1), 0.0], i % 5 == 0)


def test_ring_buffer_overwrites_oldest_and_samples_stored_only():
    buf = ReplayBuffer(4, 2)
    _fill(buf, 6)
    assert len(buf) == 4 and buf.pushed == 6
    assert sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0]  # 0 and 1 were overwritten
    b = buf.sample(1000, torch.Generator().manual_seed(0))
    assert b["obs"].shape == (1000, 2) and set(b["rewards"].tolist()) == {2.0, 3.0, 4.0, 5.0}
    counts = np.bincount(b["indices"].numpy(), minlength=4)
    assert counts.min() > 200  # roughly uniform
    torch.testing.assert_close(b["next_obs"][:, 0], b["obs"][:, 0] + 1)


def test_sum_tree_find_matches_cumsum_search():
    rng = np.random.default_rng(0)
    p = rng.random(13)
    tree = SumTree(16)
    for i, v in enumerate(p):
        tree.update(i, v)
    assert tree.total() == pytest.approx(p.sum())
    for u in rng.random(200) * p.sum():
        assert tree.find(u) == int(np.searchsorted(np.cumsum(p), u, side="right"))


def test_prioritized_sampling_frequencies_and_weights():
    buf = PrioritizedReplayBuffer(8, 2, alpha=0.7, beta=0.5)
    _fill(buf, 8)
    td = torch.tensor([0.1, 2.0, 0.5, 0.0, 1.0, 3.0, 0.2, 0.7])
    buf.update_priorities(torch.arange(8), td)
    expected = (td.double().numpy() + 1e-3) ** 0.7
    expected /= expected.sum()
    np.testing.assert_allclose(buf.probabilities(), expected, rtol=1e-9)
    g = torch.Generator().manual_seed(0)
    idx = torch.cat([buf.sample(64, g)["indices"] for _ in range(300)])
    freq = np.bincount(idx.numpy(), minlength=8) / len(idx)
    np.testing.assert_allclose(freq, expected, atol=0.01)
    b = buf.sample(16, g)
    w = (8 * expected[b["indices"].numpy()]) ** -0.5
    assert_close_f32(b["weights"], w / w.max(), n=4)  # (N p)^-beta / max, rounded to float32


def test_dqn_td_target_by_hand_and_double():
    torch.manual_seed(0)
    q = torch.nn.Linear(2, 2)
    agent = DQN(q, 2, gamma=0.5)
    with torch.no_grad():
        agent.target.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        agent.target.bias.zero_()
    s2 = torch.tensor([[1.0, 3.0], [4.0, 2.0]])
    y = agent.td_target(torch.tensor([1.0, 1.0]), s2, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.5 * 3.0, 1.0]))  # terminal: no bootstrap
    agent.double = True
    with torch.no_grad():
        q.weight.copy_(torch.tensor([[0.0, 0.0], [-1.0, 0.0]]))  # online net prefers action 0 on s2[0]
        q.bias.zero_()
    y = agent.td_target(torch.tensor([1.0, 1.0]), s2, torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.5 * 1.0, 1.0 + 0.5 * 4.0]))


def test_dqn_update_lowers_loss_and_target_sync():
    torch.manual_seed(0)
    q = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    buf = ReplayBuffer(64, 2)
    _fill(buf, 64)
    agent = DQN(q, 2, lr=1e-2, buffer=buf, target_update=10, learning_starts=1)
    batch = buf.sample(64, torch.Generator().manual_seed(1))
    first = agent.update(batch)
    for _ in range(30):
        last = agent.update(batch)
    assert last < first
    assert not torch.equal(agent.target[0].weight, q[0].weight)
    for _ in range(10):
        agent.observe([0.0, 0.0], 0, 0.0, [0.0, 0.0], False, False)
    torch.testing.assert_close(agent.target[0].weight, q[0].weight)  # hard copy at step 10
    soft = DQN(torch.nn.Linear(2, 2), 2, tau=0.25, learning_starts=10**9)
    before = soft.target.weight.clone()
    with torch.no_grad():
        soft.q.weight.add_(1.0)
    soft.observe([0.0, 0.0], 0, 0.0, [0.0, 0.0], False, False)
    assert_close_f32(soft.target.weight, before + 0.25, n=3)  # theta^- <- tau theta + (1 - tau) theta^-


def test_dqn_online_update_and_epsilon_schedule():
    agent = DQN(torch.nn.Linear(2, 2), 2, learning_starts=1, eps_decay_steps=4, eps_end=0.2)
    assert agent.epsilon == 1.0
    for _ in range(4):
        agent.observe(np.zeros(2, dtype=np.float32), 1, 1.0, np.ones(2, dtype=np.float32), False, False)
    assert agent.updates == 4 and agent.epsilon == pytest.approx(0.2)
    assert agent.act(np.zeros(2, dtype=np.float32), greedy=True) in (0, 1)


def test_train_stops_when_greedy_policy_reaches_threshold():
    env = GridWorld(["S..G"])
    agent = QLearning(4, 4, lr=1.0, gamma=0.9, epsilon=1.0, seed=0)
    log = train(env, agent, max_steps=10_000, eval_env=GridWorld(["S..G"]), eval_every=5, threshold=0.9)
    assert log.solved_step is not None and log.steps < 10_000
    assert np.mean(log.confirm_returns) >= 0.9 and len(log.confirm_returns) == 20
    log = train(env, QLearning(4, 4, epsilon=1.0), max_steps=50)
    assert log.solved_step is None and log.steps >= 50


def test_errors():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, 2)
    with pytest.raises(ValueError, match="empty buffer"):
        ReplayBuffer(4, 2).sample(2)
    with pytest.raises(ValueError, match="beta"):
        PrioritizedReplayBuffer(4, 2, beta=2.0)
    with pytest.raises(ValueError, match="gamma"):
        DQN(torch.nn.Linear(2, 2), 2, gamma=1.0)
    with pytest.raises(ValueError, match="tau"):
        DQN(torch.nn.Linear(2, 2), 2, tau=0.0)
    with pytest.raises(ValueError, match="eps_end"):
        DQN(torch.nn.Linear(2, 2), 2, eps_start=0.1, eps_end=0.5)
    with pytest.raises(ValueError, match="max_steps"):
        train(GridWorld(), QLearning(25, 4), max_steps=0)
