"""Grid world against gymnasium's FrozenLake and env checker; value iteration, Q-learning, REINFORCE."""

from __future__ import annotations

from collections import defaultdict

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from _tolerance import assert_close_f32
from dlterms.rl.gridworld import GridWorld
from dlterms.rl.loop import evaluate, run_episode
from dlterms.rl.policy_gradient import REINFORCE, discounted_returns
from dlterms.rl.tabular import QLearning, optimal_actions, policy_evaluation, value_iteration

FROZEN = ["SFFF", "FHFH", "FFFH", "HFFG"]


def _dist(outcomes):
    d = defaultdict(float)
    for p, s2, r, done in outcomes:
        d[(int(s2), float(r), bool(done))] += p
    return {k: round(v, 9) for k, v in d.items()}


def _frozen_like() -> GridWorld:
    return GridWorld([row.replace("F", ".") for row in FROZEN], slip=2 / 3, step_reward=0.0, hole_reward=0.0)


def test_transition_model_matches_frozenlake():
    ours = _frozen_like()
    ref = gym.make("FrozenLake-v1", is_slippery=True).unwrapped
    for s in range(16):
        for a in range(4):
            assert _dist(ours.P[s][a]) == _dist(ref.P[s][a]), (s, a)


def test_passes_gymnasium_env_checker_and_steps_like_p():
    env = GridWorld(slip=0.2)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs == env.start
    det = GridWorld()
    det.reset(seed=0)
    s2, r, term, trunc, _ = det.step(2)  # right from (0, 0) -> (0, 1)
    assert (s2, r, term, trunc) == (1, -0.01, False, False)


def test_value_iteration_matches_frozenlake_model_and_bellman_equation():
    ref = gym.make("FrozenLake-v1", is_slippery=True).unwrapped
    V_ref, Q_ref = value_iteration(ref.P, 16, 4, gamma=0.9)
    V, Q = value_iteration(_frozen_like().P, 16, 4, gamma=0.9)
    np.testing.assert_allclose(V, V_ref, atol=1e-9)
    # V* is the exact value of the greedy policy, and the start state is worth something
    np.testing.assert_allclose(policy_evaluation(ref.P, Q_ref.argmax(1), 0.9), V_ref, atol=1e-8)
    assert 0.05 < V_ref[0] < 0.1
    # hand-worked: deterministic corridor S . G with zero step cost: V(0) = gamma * 1
    V, _ = value_iteration(GridWorld(["S.G"], step_reward=0.0).P, 3, 4, gamma=0.5)
    np.testing.assert_allclose(V, [0.5, 1.0, 0.0])


def test_q_learning_converges_to_q_star():
    env = GridWorld()
    V, Q = value_iteration(env.P, 25, 4, gamma=0.9)
    agent = QLearning(25, 4, lr=1.0, gamma=0.9, epsilon=1.0, seed=0)
    for i in range(3000):
        run_episode(env, agent, seed=i)
    reachable = [s for s in range(25) if env.cell(s) in "S."]
    np.testing.assert_allclose(agent.Q[reachable], Q[reachable], atol=1e-6)
    best = optimal_actions(Q)
    assert all(agent.greedy_policy()[s] in best[s] for s in reachable)


def test_discounted_returns_hand_worked():
    torch.testing.assert_close(discounted_returns([1.0, 0.0, 2.0], 0.5), torch.tensor([1.5, 1.0, 2.0]))


def test_reinforce_gradient_matches_analytic_softmax_gradient():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2, bias=False)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    agent = REINFORCE(net, opt, gamma=0.9, baseline_momentum=0.0)
    obs = [torch.randn(3) for _ in range(4)]
    actions, rewards = [0, 1, 1, 0], [0.0, 1.0, 0.0, 2.0]
    for t in range(4):
        agent.observe(obs[t], actions[t], rewards[t], obs[t], t == 3, False)
    G = discounted_returns(rewards, 0.9)
    W = net.weight.detach()
    grad = torch.zeros_like(W)
    for t in range(4):
        pi = torch.softmax(W @ obs[t], 0)
        onehot = torch.nn.functional.one_hot(torch.tensor(actions[t]), 2).float()
        grad += -torch.outer(onehot - pi, obs[t]) * G[t] / 4  # d/dW of -log pi(a|s) G
    assert_close_f32(net.weight.grad, grad, n=4 * (3 + 2 + 4))  # 4 steps of a 3-input softmax policy


def test_reinforce_learns_grid_world_and_evaluate():
    env = GridWorld(["S..G"])
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 4, bias=False)
    torch.nn.init.zeros_(net.weight)
    agent = REINFORCE(
        net,
        torch.optim.Adam(net.parameters(), lr=0.2),
        gamma=0.9,
        obs_fn=lambda o: torch.nn.functional.one_hot(torch.tensor(o), 4).float(),
        generator=torch.Generator().manual_seed(0),
    )
    for i in range(100):
        run_episode(env, agent, seed=i)
    assert evaluate(env, agent, 2) == pytest.approx([0.98, 0.98])


def test_errors():
    with pytest.raises(ValueError, match="slip"):
        GridWorld(slip=1.0)
    with pytest.raises(ValueError, match="grid may contain"):
        GridWorld(["SxG"])
    with pytest.raises(ValueError, match="exactly one 'S'"):
        GridWorld(["..G"])
    with pytest.raises(ValueError, match="gamma"):
        value_iteration(GridWorld().P, 25, 4, gamma=1.0)
    with pytest.raises(ValueError, match="lr"):
        QLearning(3, 2, lr=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        QLearning(3, 2, epsilon=2.0)
    with pytest.raises(ValueError, match="action"):
        env = GridWorld()
        env.reset(seed=0)
        env.step(7)
    with pytest.raises(ValueError, match="episodes"):
        evaluate(GridWorld(), QLearning(25, 4), 0)
