"""When a concept runs its fast path, and how a fast path falls back to differentiating the equations.

Every concept in `dlterms.nn` and `dlterms.losses` is first written from its equations, as a public
function built from differentiable tensor operations (`softmax_equations`, `batch_norm_equations`,
`lstm_sequence_equations`, ...): autograd differentiates it, to any order and under `torch.func`.
Some of them also have a fast path beneath them, an `autograd.Function` with the backward written
out (it keeps fewer intermediates and makes fewer calls), which is what runs by default. The tests
check each fast path against its equations, values and gradients.

This module holds the rules the fast paths share, so that no concept file repeats them:

- `transforms_active()`: inside `torch.func` transforms (`vmap`, `grad`, `jvp`, ...), for which our
  `autograd.Function`s define no rules, a concept runs its equations.
- `needs_grad(*tensors)`: whether autograd would record anything for these inputs (a forward pass can
  then skip keeping what only the backward needs).
- `create_graph()`: called inside a hand-written `backward`; True when the gradient being computed must
  itself be differentiable (`create_graph=True`: a Hessian, a gradient penalty, MAML). The closed-form
  backwards are written for speed, not to be differentiated again, so they then hand the work to
  `grads_through`, which differentiates the equations with autograd instead.
- `declare(equations, *runs, saves=...)` records, on the equations function, which objects run by
  default in its place and what they save; the site's code panel shows the equations open and those
  objects folded under "what runs by default, and why" (see `dlterms.site.render`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["FastPath", "transforms_active", "needs_grad", "create_graph", "grads_through", "declare"]


def transforms_active() -> bool:
    """True inside a `torch.func` transform (vmap, grad, jacrev, jvp, ...).

    torch has no public way to ask this. `torch._C._are_functorch_transforms_active` is the check
    torch's own Python code uses; it is called here and nowhere else in dlterms, so a change of torch's
    API is one line to fix.
    """
    return torch._C._are_functorch_transforms_active()


def needs_grad(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd records a graph for an operation on these tensors (grad mode on, and one of them
    requires grad)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def create_graph() -> bool:
    """Inside an `autograd.Function.backward`: True when the backward pass itself is being recorded
    (`torch.autograd.grad(..., create_graph=True)` or `backward(create_graph=True)`); autograd runs a
    backward with grad mode on exactly then."""
    return torch.is_grad_enabled()


def grads_through(
    equations: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]],
    inputs: Sequence[torch.Tensor | None],
    needs: Sequence[bool],
    grad_outputs: torch.Tensor | Sequence[torch.Tensor | None],
) -> tuple[torch.Tensor | None, ...]:
    """The gradients of `equations(*inputs)` against `grad_outputs`, by autograd, differentiable again.

    What a hand-written backward returns under `create_graph()`: one entry per input, None where
    `needs` is False (`ctx.needs_input_grad`) and where an input does not reach the outputs.
    `grad_outputs` matches the outputs of `equations` (a tensor, or one per output; None for an output
    that received no gradient).
    """
    wanted = [x for x, need in zip(inputs, needs) if need]
    with torch.enable_grad():
        outputs = equations(*inputs)
        if isinstance(outputs, torch.Tensor):
            outputs, grad_outputs = (outputs,), (grad_outputs,)
        pairs = [(y, g) for y, g in zip(outputs, grad_outputs) if g is not None]
        found = iter(
            torch.autograd.grad(
                [y for y, _ in pairs], wanted, [g for _, g in pairs], create_graph=True, allow_unused=True
            )
        )
    return tuple(next(found) if need else None for need in needs)


@dataclass(frozen=True)
class FastPath:
    """What runs by default in place of an equations function, and why."""

    runs: tuple[object, ...]  # the dispatcher and the fast implementation(s), in reading order
    saves: str  # one or two sentences: what the fast path saves over autograd of the equations


def declare(equations: Callable, *runs: object, saves: str) -> None:
    """Record on `equations` (as `equations.__fast_path__`) the objects that run by default in its place.

    Called once per concept, beneath its fast path. Only the site reads it: the code panel of an entry
    that names `equations` shows its source open and the sources of `runs` folded beneath it.
    """
    if not saves:
        raise ValueError(f"say what the fast path of {equations.__name__} saves (saves=...), got {saves!r}")
    equations.__fast_path__ = FastPath(tuple(runs), saves)
