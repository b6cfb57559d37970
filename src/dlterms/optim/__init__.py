"""Optimisers written from their update equations, with torch.optim's interface.

Every optimiser subclasses `torch.optim.Optimizer` (so `param_groups`, `zero_grad`, `step(closure)`,
`state_dict`/`load_state_dict` and torch's schedulers work) and is checked against `torch.optim`
in tests. Procedures that choose training settings (the LR range test, random and grid search) are
in `dlterms.tuning`. Naming rule: PyTorch's argument names outside (`lr, betas, eps, weight_decay`), the
papers' symbols inside (`m, v, beta1`).
"""

from dlterms.optim.adam import Adam, AdamW, SparseAdam
from dlterms.optim.clip import clip_grad_norm_, clip_grad_value_
from dlterms.optim.lookahead import Lookahead
from dlterms.optim.newton import Newton, hessian
from dlterms.optim.rmsprop import RMSprop
from dlterms.optim.schedules import CosineAnnealingLR, LambdaLR, LinearLR, LRSchedule, SequentialLR, StepLR
from dlterms.optim.sgd import SGD

__all__ = [
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "SparseAdam",
    "Lookahead",
    "Newton",
    "hessian",
    "clip_grad_norm_",
    "clip_grad_value_",
    "LRSchedule",
    "StepLR",
    "CosineAnnealingLR",
    "LinearLR",
    "LambdaLR",
    "SequentialLR",
]
