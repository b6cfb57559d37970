r"""Several copies of one architecture trained side by side as one: `ModelStack`.

Experiments often repeat an inner run: the same model trained from several seeds, or under several
conditions that share its shapes. Run one after another, each step of each copy pays the fixed cost
of every small tensor operation again. A stack holds the M copies' parameters as tensors with a new
leading dimension of size M and runs the model once per step with `torch.func.vmap` over
`torch.func.functional_call`, so each operation is issued once for all M copies:

    stack = ModelStack([make_model(seed) for seed in seeds])  # same architecture, own initialisation
    out = stack(x)                   # x (M, B, ...) -> (M, B, ...): copy i sees x[i]
    out = stack(x, shared=True)      # x (B, ...)    -> (M, B, ...): every copy sees the same x
    loss = per_copy_loss.sum()       # (M,) -> a scalar
    loss.backward()                  # stack.parameters()[k].grad[i] is copy i's own gradient
    opt = Adam(stack.parameters(), lr=3e-3)   # = M independent Adams
    model_2 = stack.model(2)         # a plain module holding copy 2's current parameters

Why this trains each copy exactly as it would be trained alone. Copy i's parameters $\theta_i$ only
reach its own loss $L_i$, so for the summed loss $L = \sum_j L_j$ the gradient with respect to
$\theta_i$ is $\partial L / \partial \theta_i = \partial L_i / \partial \theta_i$: each slice of a stacked
gradient is that copy's gradient (sum the per-copy losses; a mean over copies would scale every
gradient by 1/M). An optimizer whose update is element-wise given the gradient (SGD, momentum,
RMSprop, Adam, AdamW) then updates each slice as it would update that copy alone, with the same
learning rate and step count. Optimizers or tricks whose update mixes the elements of a tensor or of
all parameters (LAMB's trust ratio, clipping by the global gradient norm) would couple the copies:
do not use them on a stack. Results agree with separate runs up to float rounding (a batched matrix
product sums in its own order), not bit for bit.

Modules whose forward draws random numbers (dropout) get independent draws per copy
(`randomness="different"`); modules with running buffers (batch norm statistics) are not supported.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["ModelStack"]


class ModelStack:
    """M modules of one architecture with their parameters stacked along a leading dimension.

    Args:
        models: the copies (at least one), each already initialised (e.g. from its own seed); all
            must have the same parameter names and shapes, and no buffers. They are not modified:
            the stack holds its own parameters (new leaf tensors, (M, *shape) each).
    """

    def __init__(self, models: Iterable[torch.nn.Module]):
        models = list(models)
        if not models:
            raise ValueError("models must hold at least one module, got none")
        first = models[0]
        shapes = [(n, tuple(p.shape)) for n, p in first.named_parameters()]
        for i, m in enumerate(models):
            if type(m) is not type(first):
                raise ValueError(f"models must share one class, got {type(first).__name__} and {type(m).__name__}")
            if [(n, tuple(p.shape)) for n, p in m.named_parameters()] != shapes:
                raise ValueError(f"models[{i}] has other parameter names or shapes than models[0]")
            if any(True for _ in m.buffers()):
                raise ValueError(f"models[{i}] has buffers (e.g. batch-norm statistics); a stack does not support them")
        params, _ = stack_module_state(models)  # {name: (M, *shape)} new leaves that require grad
        self.params: dict[str, Tensor] = params
        self.template = copy.deepcopy(first)  # attributes (sizes, flags) and what `model(i)` copies
        self._base = copy.deepcopy(first).to("meta")  # shapes only; functional_call supplies the tensors
        self.size = len(models)

    def __len__(self) -> int:
        return self.size

    def parameters(self) -> list[Tensor]:
        """The stacked parameters, (M, *shape) each: hand them to an element-wise optimizer."""
        return list(self.params.values())

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        return list(self.params.items())

    def to(self, device) -> ModelStack:
        """Move the parameters (as new leaves) to `device`; returns self."""
        self.params = {k: p.detach().to(device).requires_grad_(p.requires_grad) for k, p in self.params.items()}
        self.template = self.template.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(iter(self.params.values())).device

    def _one(self, params: dict[str, Tensor], *inputs):
        return functional_call(self._base, params, inputs)

    def __call__(self, *inputs: Tensor, shared: bool = False):
        """Every copy's forward: input i of each argument goes to copy i (inputs (M, ...)), or with
        `shared=True` the same inputs go to every copy. Outputs gain a leading dimension M."""
        if not shared:
            for x in inputs:
                if x.dim() == 0 or x.shape[0] != self.size:
                    raise ValueError(
                        f"each input needs a leading dimension of size {self.size} (one slice per copy), "
                        f"got shape {tuple(x.shape)}; pass shared=True to give every copy the same input"
                    )
        in_dims = (0, *(None if shared else 0 for _ in inputs))
        return vmap(self._one, in_dims=in_dims, randomness="different")(self.params, *inputs)

    @torch.no_grad()
    def model(self, i: int) -> torch.nn.Module:
        """A plain module (a copy of the template) holding copy i's current parameters."""
        if not -self.size <= i < self.size:
            raise ValueError(f"i must be in [{-self.size}, {self.size}), got {i}")
        m = copy.deepcopy(self.template)
        for name, p in m.named_parameters():
            p.copy_(self.params[name][i])
        return m
