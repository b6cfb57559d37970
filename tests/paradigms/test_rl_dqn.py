"""Replay buffers (ring overwrite, uniform and prioritised sampling against brute force), DQN targets,
updates and target-network synchronisation, the training loop's stopping rule, and the lockstep
versions (ensemble network, per-member buffers and clipping, VectorDQN = K separate DQNs)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn import MLP
from dlterms.optim import clip_grad_norm_
from dlterms.rl.dqn import DQN, VectorDQN
from dlterms.rl.ensemble import EnsembleMLP, clip_grad_norm_per_member_
from dlterms.rl.gridworld import GridWorld
from dlterms.rl.loop import evaluate_vector, train, train_vector
from dlterms.rl.replay import PrioritizedReplayBuffer, ReplayBuffer, SumTree, VectorReplayBuffer
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


# ---- K agents in lockstep: EnsembleMLP, per-member clipping, VectorReplayBuffer, VectorDQN, vector loop


def _mlps(k, sizes=(3, 8, 8, 2), seed=0):
    out = []
    for i in range(k):
        torch.manual_seed(seed + i)
        out.append(MLP(list(sizes)))
    return out


def test_ensemble_mlp_equals_its_members_and_keeps_groups_apart():
    mlps = _mlps(3)
    ens = EnsembleMLP(mlps, groups=[2, 1])
    x = torch.randn(3, 5, 3)
    out = ens(x)
    for k, m in enumerate(mlps):
        torch.testing.assert_close(out[k], m(x[k]), atol=1e-6, rtol=1e-6)
    assert [len(g) for g in ens.group_parameters()] == [6, 6]
    assert ens.group_parameters()[0][0].shape == (2, 3, 8) and ens.group_parameters()[1][0].shape == (1, 3, 8)
    # member 1's loss moves only member 1's gradient
    ens(x)[1].sum().backward()
    w = ens.layer(0)[0]
    assert ens.group_parameters()[0][0].grad[0].abs().max() == 0 and ens.group_parameters()[1][0].grad.abs().max() == 0
    assert ens.group_parameters()[0][0].grad[1].abs().max() > 0 and w.shape == (3, 3, 8)


def test_ensemble_copy_after_forward_uses_its_own_weights():
    # the per-layer lists of parameters are built on the first forward; a deepcopy made afterwards
    # (a target network) must compute with its own copies, and in-place changes must be seen
    ens = EnsembleMLP(_mlps(2))
    x = torch.randn(2, 4, 3)
    before = ens(x)
    twin = copy.deepcopy(ens)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    assert torch.equal(ens(x), before)
    assert not torch.equal(twin(x), before)
    twin.load_state_dict(ens.state_dict())
    assert torch.equal(twin(x), before)


def test_ensemble_without_grad_reuses_its_concatenation_until_a_parameter_changes():
    # several groups: the layers are concatenations; without autograd they are cached, keyed on every
    # parameter's identity and version, so in-place updates, copies and load_state_dict are all seen
    mlps = _mlps(3)
    ens = EnsembleMLP(mlps, groups=[1, 2])
    x = torch.randn(3, 4, 3)
    with torch.no_grad():
        before = ens(x)
        assert torch.equal(ens(x), before) and ens.layer(0)[0] is ens.layer(0)[0]
    assert torch.equal(ens(x), before)  # with autograd: the same values from a fresh concatenation
    twin = copy.deepcopy(ens)
    with torch.no_grad():
        ens.group_parameters()[1][2].add_(0.5)  # group 1, second layer's weight, in place
        moved = ens(x)
        assert not torch.equal(moved, before) and torch.equal(moved[0], before[0])
        assert torch.equal(moved, ens(x.clone()))
        for k, m in enumerate(mlps):  # the reference: each member on its own, with the same change
            if k > 0:
                [lin for lin in m if isinstance(lin, torch.nn.Module) and hasattr(lin, "weight")][1].weight.add_(0.5)
            torch.testing.assert_close(moved[k], m(x[k]), atol=1e-6, rtol=1e-6)
        assert torch.equal(twin(x), before)  # the copy computes with its own, unchanged weights
        twin.load_state_dict(ens.state_dict())
        assert torch.equal(twin(x), moved)
        torch._foreach_lerp_(list(twin.parameters()), [p + 1.0 for p in ens.parameters()], 0.5)  # a soft update
        shifted = twin(x)
        with torch.enable_grad():
            assert torch.equal(shifted, twin(x))  # the cached layers are the fresh concatenation's values
        assert not torch.equal(shifted, moved)


def test_clip_per_member_equals_clip_grad_norm_on_each_member():
    mlps = _mlps(2)
    ens = EnsembleMLP(mlps)
    x = torch.randn(2, 7, 3)
    (ens(x) * torch.tensor([1.0, 50.0]).view(2, 1, 1)).pow(2).sum().backward()
    ref = []
    for k, m in enumerate(mlps):
        (m(x[k]) * [1.0, 50.0][k]).pow(2).sum().backward()
        norm = clip_grad_norm_(list(m.parameters()), 1.0)
        ref.append((norm, [p.grad.clone() for p in m.parameters()]))
    norms = clip_grad_norm_per_member_(ens.group_parameters()[0], 1.0)
    for k, (norm, grads) in enumerate(ref):
        assert float(norms[k]) == pytest.approx(float(norm), rel=1e-5)
        for i in range(3):  # weights stored transposed, biases with a middle dimension of 1
            torch.testing.assert_close(ens.weights[i].grad[k], grads[2 * i].t(), atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(ens.biases[i].grad[k, 0], grads[2 * i + 1], atol=1e-6, rtol=1e-5)


def test_vector_replay_buffer_rings_per_member_and_capacity_one_is_online():
    buf = VectorReplayBuffer([3, 1], 2)
    for i in range(5):
        o = np.array([[i, 0.0], [10 + i, 0.0]])
        buf.push(o, [i % 2, 1], [float(i), float(10 + i)], o + 1, [False, i == 4])
    assert buf.sizes().tolist() == [3, 1] and len(buf) == 1
    assert sorted(buf.rewards[0, :3].tolist()) == [2.0, 3.0, 4.0]  # member 0 keeps its last 3
    b = buf.sample(200, torch.Generator().manual_seed(0))
    assert b["obs"].shape == (2, 200, 2)
    assert set(b["rewards"][0].tolist()) == {2.0, 3.0, 4.0}
    assert set(b["rewards"][1].tolist()) == {14.0} and bool(b["terminated"][1].all())  # the transition just seen
    torch.testing.assert_close(b["next_obs"], b["obs"] + 1)


def test_vector_dqn_update_equals_separate_dqn_updates():
    mlps = _mlps(2)
    singles = [DQN(copy.deepcopy(m), 2, lr=1e-2, gamma=0.9, double=True, max_grad_norm=0.5) for m in mlps]
    vec = VectorDQN(EnsembleMLP(mlps, groups=[1, 1]), 2, lr=[1e-2, 1e-2], gamma=0.9, double=True, max_grad_norm=0.5)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        batch = {
            "obs": torch.randn(2, 6, 3, generator=g),
            "actions": torch.randint(2, (2, 6), generator=g),
            "rewards": torch.randn(2, 6, generator=g),
            "next_obs": torch.randn(2, 6, 3, generator=g),
            "terminated": (torch.rand(2, 6, generator=g) < 0.3).float(),
        }
        losses = vec.update(batch)
        for k, agent in enumerate(singles):
            one = {key: v[k] for key, v in batch.items()} | {"weights": torch.ones(6)}
            assert float(losses[k]) == pytest.approx(agent.update(one), rel=1e-5)
    x = torch.randn(2, 4, 3)
    out = vec.q(x)
    for k, agent in enumerate(singles):
        torch.testing.assert_close(out[k], agent.q(x[k]), atol=1e-5, rtol=1e-5)


def test_vector_loop_on_cartpole_counts_steps_and_evaluates():
    gym = pytest.importorskip("gymnasium")
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
    from gymnasium.vector import AutoresetMode

    vec = VectorDQN(EnsembleMLP(_mlps(2, (4, 8, 2))), 2, capacities=[100, 1], learning_starts=20, batch_size=8)
    env = gym.make_vec(
        "CartPole-v1", num_envs=2, vectorization_mode="sync", vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}
    )
    log = train_vector(
        env, vec, steps=120, seed=0, eval_env=CartPoleVectorEnv(num_envs=2 * 3), eval_every=50, eval_episodes=3
    )
    assert vec.steps == 120 and log.eval_steps == [50, 100, 120] and log.eval_returns[0].shape == (2, 3)
    assert all(sum(r) <= 120 and len(r) >= 1 for r in log.returns)  # random-ish play ends episodes quickly
    assert vec.buffer.pushed.tolist() == [120, 120] and vec.buffer.sizes().tolist() == [100, 1]
    with pytest.raises(ValueError, match="one environment per member"):
        train_vector(CartPoleVectorEnv(num_envs=3), vec, steps=5)
    with pytest.raises(ValueError, match="members \\* episodes"):
        evaluate_vector(CartPoleVectorEnv(num_envs=5), vec, 3)
