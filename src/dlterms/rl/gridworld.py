r"""A small grid world on gymnasium's `Env` API, with its transition model exposed for planning.

The map is a list of strings: `S` start, `.` free, `#` wall, `G` goal (reward +1, episode ends),
`H` hole (reward `hole_reward`, -1 by default; episode ends). Every other step costs `step_reward`.
Actions follow gymnasium's FrozenLake: 0 left, 1 down, 2 right, 3 up; walking into a wall or the
border leaves the agent where it is. With `slip > 0` the intended move happens with probability
$1 - \mathrm{slip}$ and each of the two perpendicular moves with probability $\mathrm{slip}/2$.

`P[s][a]` is the list of `(probability, next_state, reward, terminated)` tuples (FrozenLake's
format), the Markov decision process $p(s', r \mid s, a)$ that value iteration plans with.
Nothing is rendered.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

__all__ = ["GridWorld", "DEFAULT_MAP"]

DEFAULT_MAP = (
    "S...#",
    ".#..H",
    "..#..",
    "H...#",
    "..#.G",
)

_MOVES = {0: (0, -1), 1: (1, 0), 2: (0, 1), 3: (-1, 0)}  # action -> (d_row, d_col)


class GridWorld(gym.Env):
    """Tabular grid world; observations are state indices row * n_cols + col."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        grid: tuple[str, ...] | list[str] = DEFAULT_MAP,
        slip: float = 0.0,
        step_reward: float = -0.01,
        hole_reward: float = -1.0,
        max_episode_steps: int = 100,
    ):
        rows = [str(r) for r in grid]
        if not rows or any(len(r) != len(rows[0]) for r in rows):
            raise ValueError(f"grid must be a non-empty list of equal-length strings, got {grid!r}")
        cells = "".join(rows)
        if set(cells) - set("S.#GH"):
            bad = sorted(set(cells) - set("S.#GH"))
            raise ValueError(f"grid may contain only 'S', '.', '#', 'G', 'H', got {bad}")
        if cells.count("S") != 1 or "G" not in cells:
            raise ValueError("grid needs exactly one 'S' and at least one 'G'")
        if not 0.0 <= slip < 1.0:
            raise ValueError(f"slip must be in [0, 1), got {slip}")
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        self.grid, self.slip, self.step_reward = tuple(rows), float(slip), float(step_reward)
        self.hole_reward = float(hole_reward)
        self.max_episode_steps = int(max_episode_steps)
        self.n_rows, self.n_cols = len(rows), len(rows[0])
        self.observation_space = gym.spaces.Discrete(self.n_rows * self.n_cols)
        self.action_space = gym.spaces.Discrete(4)
        self.start = cells.index("S")
        self.P = self._transitions()
        self._s, self._t = self.start, 0

    def cell(self, s: int) -> str:
        return self.grid[s // self.n_cols][s % self.n_cols]

    def is_terminal(self, s: int) -> bool:
        return self.cell(s) in "GH"

    def _move(self, s: int, a: int) -> int:
        r, c = divmod(s, self.n_cols)
        dr, dc = _MOVES[a]
        r2, c2 = r + dr, c + dc
        if not (0 <= r2 < self.n_rows and 0 <= c2 < self.n_cols) or self.grid[r2][c2] == "#":
            return s
        return r2 * self.n_cols + c2

    def _outcome(self, s2: int) -> tuple[float, bool]:
        c = self.cell(s2)
        return {"G": (1.0, True), "H": (self.hole_reward, True)}.get(c, (self.step_reward, False))

    def _transitions(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:
        P: dict[int, dict[int, list]] = {}
        for s in range(self.n_rows * self.n_cols):
            P[s] = {}
            for a in range(4):
                if self.is_terminal(s) or self.cell(s) == "#":
                    P[s][a] = [(1.0, s, 0.0, True)]
                    continue
                outcomes: dict[int, float] = {}
                choices = [(a, 1.0 - self.slip)]
                if self.slip > 0:
                    choices += [((a + 1) % 4, self.slip / 2), ((a + 3) % 4, self.slip / 2)]
                for b, p in choices:
                    s2 = self._move(s, b)
                    outcomes[s2] = outcomes.get(s2, 0.0) + p
                P[s][a] = [(p, s2, *self._outcome(s2)) for s2, p in outcomes.items()]
        return P

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._s, self._t = self.start, 0
        return self._s, {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in 0..3, got {action!r}")
        outcomes = self.P[self._s][int(action)]
        if len(outcomes) == 1:
            p, s2, r, term = outcomes[0]
        else:
            i = self.np_random.choice(len(outcomes), p=np.array([o[0] for o in outcomes]))
            p, s2, r, term = outcomes[i]
        self._s, self._t = s2, self._t + 1
        truncated = not term and self._t >= self.max_episode_steps
        return s2, r, term, truncated, {}
