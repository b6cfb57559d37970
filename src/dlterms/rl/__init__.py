"""Reinforcement learning on gymnasium's API.

- `loop`: the agent-environment loop (`run_episode`, `evaluate`) and the agent protocol.
- `gridworld`: a small tabular `GridWorld` env with its transition model `P`.
- `tabular`: value iteration, exact policy evaluation, Q-learning.
- `policy_gradient`: REINFORCE.
- `replay`: ring-buffer experience replay, uniform and prioritised.
- `dqn`: deep Q-network with a target network, with or without replay.

Returns are reported undiscounted; agents discount with their own `gamma`.
"""
