"""One training loop for every experiment: `fit`.

    history = fit(model, (x_train, y_train), loss_fn=cross_entropy, optimizer=opt, epochs=20,
                  batch_size=64, val=(x_val, y_val), seed=run.seed, callbacks=[EarlyStopping(5)])

Per epoch it shuffles the training set with a seeded generator (so two runs with the same seed
see the same batches), takes one optimizer step per mini-batch, and records the mean training
loss and, when `val` is given, the validation loss and accuracy. `batch_size=None` means
full-batch training (one step per epoch).

Callbacks hook into the loop (`on_train_begin`, `on_epoch_begin`, `after_backward`,
`on_batch_end`, `on_epoch_end`, `on_train_end`) and may stop it by setting `state.stop = True`;
`state.batch_index` holds the indices of the current mini-batch. A non-finite loss stops
training cleanly: `history.stop_reason` says so and `history.nonfinite_step` names the step.

The history also keeps the learning rate and wall-clock seconds of every epoch. A scheduler is
stepped once per epoch (`scheduler_interval="epoch"`) or once per optimizer step (`"step"`).
Optimizers that need the loss function itself (`needs_closure = True`, e.g. Newton's method,
which differentiates twice) get a closure that recomputes the mini-batch loss instead of a
backward pass.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

__all__ = [
    "fit",
    "evaluate",
    "accuracy",
    "predict",
    "History",
    "TrainState",
    "Callback",
    "EarlyStopping",
    "GradientClipping",
    "ProgressCallback",
    "GradientNormRecorder",
    "StopAtLoss",
    "Every",
    "batches",
    "count_parameters",
    "gradient_norms",
    "fit_stacked",
    "StackedHistory",
]


@dataclass
class History:
    """What `fit` measured, per epoch (lists of equal length) and per step."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    steps: int = 0
    stop_reason: str = "completed"  # "completed", "early stopping", "non-finite loss", or a callback's reason
    nonfinite_step: int | None = None
    best_epoch: int | None = None
    lr: list[float] = field(default_factory=list)  # first group's learning rate during each epoch
    epoch_seconds: list[float] = field(default_factory=list)  # wall-clock seconds of each epoch

    @property
    def diverged(self) -> bool:
        return self.nonfinite_step is not None

    def log(self, name: str, value: float) -> None:
        self.extra.setdefault(name, []).append(float(value))


@dataclass
class TrainState:
    """Mutable state the loop shares with callbacks."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    step: int = 0
    batch_loss: float = float("nan")
    stop: bool = False
    stop_reason: str = ""
    epochs: int = 0
    batch_index: torch.Tensor | None = None  # indices of the current mini-batch into the training set


class Callback:
    """Base class: override the hooks you need."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_epoch_begin(self, state: TrainState) -> None: ...
    def after_backward(self, state: TrainState) -> None: ...
    def on_batch_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


class EarlyStopping(Callback):
    """Stop when the monitored validation score has not improved by `min_delta` for `patience`
    epochs; with `restore_best=True` put back the weights of the best epoch at the end.

    `monitor="val_loss"` (lower is better, the default) or `"val_acc"` (higher is better).
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True, monitor: str = "val_loss"):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        if monitor not in ("val_loss", "val_acc"):
            raise ValueError(f"monitor must be 'val_loss' or 'val_acc', got {monitor!r}")
        self.patience, self.min_delta, self.restore_best, self.monitor = patience, min_delta, restore_best, monitor
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        values = getattr(state.history, self.monitor)
        if not values:
            raise ValueError(
                f"EarlyStopping(monitor={self.monitor!r}) needs validation data: pass "
                "val=(x_val, y_val) to fit (with integer labels for val_acc)"
            )
        # internally lower is better: negate accuracy
        current = values[-1] if self.monitor == "val_loss" else -values[-1]
        if current < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = current, state.epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(state.model.state_dict())
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop, state.stop_reason = True, "early stopping"
                self.stopped_epoch = state.epoch

    def on_train_end(self, state: TrainState) -> None:
        state.history.best_epoch = self.best_epoch
        if self.restore_best and self.best_state is not None:
            state.model.load_state_dict(self.best_state)


class GradientClipping(Callback):
    """Clip gradients after backward: by global L2 norm (`max_norm`) or element-wise (`clip_value`)."""

    def __init__(self, max_norm: float | None = None, clip_value: float | None = None):
        if (max_norm is None) == (clip_value is None):
            raise ValueError("give exactly one of max_norm and clip_value")
        for name, v in (("max_norm", max_norm), ("clip_value", clip_value)):
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        self.max_norm, self.clip_value = max_norm, clip_value
        self.norms: list[float] = []

    def after_backward(self, state: TrainState) -> None:
        from dlterms.optim import clip as _clip

        params = [p for p in state.model.parameters() if p.grad is not None]
        if self.max_norm is not None:
            self.norms.append(float(_clip.clip_grad_norm_(params, self.max_norm)))
        else:
            _clip.clip_grad_value_(params, self.clip_value)


class ProgressCallback(Callback):
    """Report the fraction of epochs done to `report(fraction, message)` (e.g. `run.progress`)."""

    def __init__(self, report: Callable[[float, str], None], label: str = "training"):
        self.report, self.label = report, label

    def on_epoch_end(self, state: TrainState) -> None:
        loss = state.history.train_loss[-1]
        self.report((state.epoch + 1) / max(state.epochs, 1), f"{self.label} epoch {state.epoch + 1} loss {loss:.4f}")


def gradient_norms(model: torch.nn.Module, per: str = "parameter") -> dict[str, float]:
    """L2 norm of the current gradients: per parameter (`per="parameter"`, keyed by name) or per
    module that owns parameters directly (`per="module"`, all of its parameters together)."""
    if per not in ("parameter", "module"):
        raise ValueError(f"per must be 'parameter' or 'module', got {per!r}")
    if per == "parameter":
        return {name: float(p.grad.detach().norm()) for name, p in model.named_parameters() if p.grad is not None}
    out = {}
    for name, mod in model.named_modules():
        grads = [p.grad.detach().reshape(-1) for p in mod.parameters(recurse=False) if p.grad is not None]
        if grads:
            out[name] = float(torch.cat(grads).norm())
    return out


class GradientNormRecorder(Callback):
    """Log the gradient norm of every parameter-owning module after each backward (every `every` steps)
    into `history.extra["grad_norm/<module name>"]`, and the global norm into `extra["grad_norm"]`."""

    def __init__(self, every: int = 1):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.every = every

    def after_backward(self, state: TrainState) -> None:
        if state.step % self.every:
            return
        norms = gradient_norms(state.model, per="module")
        for name, v in norms.items():
            state.history.log(f"grad_norm/{name}", v)
        state.history.log("grad_norm", math.sqrt(sum(v * v for v in norms.values())))


class StopAtLoss(Callback):
    """Stop training once the loss is at or below `target`.

    `on="batch"`: the mini-batch loss (`state.batch_loss`, measured before that step's update);
    `reached` is then the number of updates made before the target was met. `on="epoch"`: the
    epoch's mean training loss; `reached` is the number of epochs trained. `reached` stays None
    when the target is never met."""

    def __init__(self, target: float, on: str = "batch"):
        if on not in ("batch", "epoch"):
            raise ValueError(f"on must be 'batch' or 'epoch', got {on!r}")
        if not isinstance(target, int | float) or isinstance(target, bool) or not math.isfinite(target):
            raise ValueError(f"target must be a finite number, got {target!r}")
        self.target, self.on = float(target), on
        self.reached: int | None = None

    def on_batch_end(self, state: TrainState) -> None:
        if self.on == "batch" and state.batch_loss <= self.target:
            self.reached = state.step - 1
            state.stop, state.stop_reason = True, f"loss <= {self.target:g}"

    def on_epoch_end(self, state: TrainState) -> None:
        if self.on == "epoch" and state.history.train_loss[-1] <= self.target:
            self.reached = len(state.history.train_loss)
            state.stop, state.stop_reason = True, f"training loss <= {self.target:g}"


class Every(Callback):
    """Call `fn(state)` every `k` optimizer steps (`on="step"`) or epochs (`on="epoch"`) and keep what
    it returns in `values`, with the step or epoch count in `at`. `fn` may stop training by setting
    `state.stop`.

        rec = Every(1, lambda s: recall_at_1(s.model, x, y), on="epoch")
        fit(..., callbacks=[rec]);  rec.values  # one recall per epoch"""

    def __init__(self, k: int, fn: Callable[[TrainState], object], on: str = "step"):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        if on not in ("step", "epoch"):
            raise ValueError(f"on must be 'step' or 'epoch', got {on!r}")
        if not callable(fn):
            raise ValueError(f"fn must be callable, got {fn!r}")
        self.k, self.fn, self.on = k, fn, on
        self.at: list[int] = []
        self.values: list = []

    def _maybe(self, state: TrainState, count: int) -> None:
        if count % self.k == 0:
            self.at.append(count)
            self.values.append(self.fn(state))

    def on_batch_end(self, state: TrainState) -> None:
        if self.on == "step":
            self._maybe(state, state.step)

    def on_epoch_end(self, state: TrainState) -> None:
        if self.on == "epoch":
            self._maybe(state, len(state.history.train_loss))


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (only those with requires_grad when `trainable_only`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def batches(
    n: int,
    batch_size: int | None,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> list[torch.Tensor]:
    """Index tensors of one epoch: a seeded permutation cut into batches."""
    if n < 1:
        raise ValueError(f"need at least one example, got {n}")
    bs = n if batch_size is None else batch_size
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1 or None (full batch), got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    parts = list(order.split(bs))
    if drop_last and len(parts) > 1 and len(parts[-1]) < bs:
        parts.pop()
    return parts


def _as_tensors(data) -> tuple[torch.Tensor, ...]:
    if isinstance(data, torch.Tensor):
        return (data,)
    if isinstance(data, tuple | list) and all(isinstance(t, torch.Tensor) for t in data):
        n = len(data[0])
        if any(len(t) != n for t in data):
            raise ValueError(f"all tensors in a dataset must have the same length, got {[len(t) for t in data]}")
        return tuple(data)
    raise ValueError(f"data must be a tensor or a tuple of tensors (x, y), got {type(data).__name__}")


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Model outputs for `x` in eval mode, in batches, on the model's device."""
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), x.device)
        outs = [model(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outs)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of `x` whose arg-max output equals `y`."""
    logits = predict(model, x, batch_size)
    return (logits.argmax(-1).cpu() == y.cpu()).float().mean().item()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable, batch_size: int = 1024
) -> tuple[float, float | None]:
    """(mean loss, accuracy or None when y is not integer class labels)."""
    out = predict(model, x, batch_size)
    y = y.to(out.device)
    loss = float(loss_fn(out, y))
    acc = None
    if y.dtype == torch.int64 and out.dim() == y.dim() + 1:
        acc = (out.argmax(-1) == y).float().mean().item()
    return loss, acc


def _data_parallel_shard(n: int, batch_size: int | None, drop_last: bool) -> tuple[int, int]:
    """(rank, world size) when launched by torchrun with a process group, else (0, 1).

    Equal slices are needed for the averaged gradient to equal the global batch's, so every
    global batch must split evenly across the processes.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    rank, world = dist.get_rank(), dist.get_world_size()
    bs = n if batch_size is None else batch_size
    last = n % bs
    if bs % world or (last and not drop_last and last % world):
        raise ValueError(
            f"batch_size={batch_size} over {n} examples does not split evenly across {world} "
            "processes; choose a batch size (and dataset size, or drop_last=True) divisible by it"
        )
    return rank, world


def fit(
    model: torch.nn.Module,
    train,
    *,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int | None = 32,
    val=None,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
    callbacks: Iterable[Callback] = (),
    device: str | torch.device | None = None,
    scheduler=None,
    max_steps: int | None = None,
    forward: Callable | None = None,
    scheduler_interval: str = "epoch",
) -> History:
    """Train `model` on `train` = (x, y) (or more tensors; the last one is the target).

    Args:
        loss_fn: loss(outputs, targets) -> scalar tensor.
        batch_size: examples per step; None for the full batch.
        val: optional (x_val, y_val), evaluated after every epoch.
        seed: seeds the shuffling generator (weights are initialised by the caller).
        scheduler: optional learning-rate scheduler, stepped once per epoch (or per step with
            scheduler_interval="step").
        max_steps: stop after this many optimizer steps in total.
        forward: optional `forward(model, *inputs) -> outputs` for models that take more than one input.
        device: where to train (defaults to where the model's parameters are).

    Launched by `torchrun` with an initialised process group and a model wrapped in
    DistributedDataParallel (see `dlterms.distributed`), each process trains on its slice of
    every global batch of `batch_size` examples, so the result equals a one-process run.
    Returns:
        History with per-epoch losses, per-step losses and why training stopped.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    needs_closure = getattr(optimizer, "needs_closure", False)
    tensors = _as_tensors(train)
    if device is not None:
        model.to(device)
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    tensors = tuple(t.to(dev) for t in tensors)
    *inputs, target = tensors if len(tensors) > 1 else (tensors[0], tensors[0])
    gen = torch.Generator().manual_seed(seed)
    history = History()
    state = TrainState(model=model, optimizer=optimizer, history=history, epochs=epochs)
    callbacks = list(callbacks)
    call = forward or (lambda m, *xs: m(*xs))
    for cb in callbacks:
        cb.on_train_begin(state)
    n = len(target)
    rank, world = _data_parallel_shard(n, batch_size, drop_last)
    for epoch in range(epochs):
        state.epoch = epoch
        model.train()
        t0 = time.perf_counter()
        epoch_lr = float(optimizer.param_groups[0]["lr"]) if optimizer.param_groups else math.nan
        for cb in callbacks:
            cb.on_epoch_begin(state)
        total, count = 0.0, 0
        for idx in batches(n, batch_size, gen, shuffle, drop_last):
            if world > 1:
                # Data parallel: every process draws the same global batch and keeps its slice;
                # DistributedDataParallel averages the slices' gradients = the global batch's gradient.
                idx = idx[rank::world]
            idx = idx.to(dev)
            state.batch_index = idx
            optimizer.zero_grad(set_to_none=True)
            out = call(model, *(t[idx] for t in inputs))
            loss = loss_fn(out, target[idx])
            value = float(loss.detach())
            if not math.isfinite(value):
                history.nonfinite_step = state.step
                state.stop, state.stop_reason = True, "non-finite loss"
                break
            if needs_closure:
                # the optimizer differentiates the loss itself (e.g. twice, for a Hessian)
                batch = tuple(t[idx] for t in inputs), target[idx]
                optimizer.step(lambda batch=batch: loss_fn(call(model, *batch[0]), batch[1]))
            else:
                loss.backward()
                for cb in callbacks:
                    cb.after_backward(state)
                optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            state.step += 1
            state.batch_loss = value
            history.step_loss.append(value)
            total += value * len(idx)
            count += len(idx)
            for cb in callbacks:
                cb.on_batch_end(state)
            if max_steps is not None and state.step >= max_steps:
                state.stop, state.stop_reason = True, state.stop_reason or "max steps"
                break
            if state.stop:
                break
        if count:
            history.train_loss.append(total / count)
            if val is not None:
                vx, vy = _as_tensors(val)[:-1], _as_tensors(val)[-1]
                with torch.no_grad():
                    model.eval()
                    vout = call(model, *(t.to(dev) for t in vx))
                    vy = vy.to(dev)
                    history.val_loss.append(float(loss_fn(vout, vy)))
                    if vy.dtype == torch.int64 and vout.dim() == vy.dim() + 1:
                        history.val_acc.append((vout.argmax(-1) == vy).float().mean().item())
            history.epochs_run = epoch + 1
            history.lr.append(epoch_lr)
            history.epoch_seconds.append(time.perf_counter() - t0)
            if scheduler is not None and scheduler_interval == "epoch":
                scheduler.step()
            for cb in callbacks:
                cb.on_epoch_end(state)
        if state.stop:
            break
    history.steps = state.step
    if state.stop:
        history.stop_reason = state.stop_reason
    for cb in callbacks:
        cb.on_train_end(state)
    return history


# --------------------------------------------------------------------------- many models side by side


@dataclass
class StackedHistory:
    """What `fit_stacked` measured: one column per model."""

    step_loss: torch.Tensor  # (steps, G): each model's loss on each mini-batch
    train_loss: torch.Tensor  # (epochs, G): each model's mean mini-batch loss in each epoch
    nonfinite_step: list[int | None]  # per model: the first step whose loss was not finite, else None
    steps: int = 0
    epochs_run: int = 0

    @property
    def diverged(self) -> list[bool]:
        return [s is not None for s in self.nonfinite_step]


@dataclass
class StackedState:
    """What `fit_stacked` shows its `callback`: the step and epoch, the latest mini-batch losses
    (G,), and `forward(x)`, every model's outputs for `x` (without gradients), shape (G, N, ...)."""

    step: int
    epoch: int
    losses: torch.Tensor
    forward: Callable[[torch.Tensor], torch.Tensor]
    stop: bool = False


def fit_stacked(
    models,
    train,
    *,
    loss_fn: Callable,
    lr,
    momentum: float = 0.0,
    epochs: int,
    batch_size: int | None = 32,
    seed=0,
    shuffle: bool = True,
    drop_last: bool = False,
    max_steps: int | None = None,
    callback: Callable[[StackedState], None] | None = None,
    every: int = 1,
) -> StackedHistory:
    """Train G models of one architecture side by side: each as `fit` with
    `dlterms.optim.SGD(lr=lr[g], momentum=momentum)` would, on the same mini-batches, in one
    vectorised forward and backward pass per step (`torch.func.vmap` over the stacked weights).

    The stacking itself is `dlterms.stacked.ModelStack` (so models with buffers, such as batch norm,
    are refused); this is the training loop around it. A learning rate per model comes from scaling
    each model's loss: SGD with momentum is linear in the gradient, so a step of lr_max on
    (lr_g / lr_max) * loss_g is a step of lr_g on loss_g. The models' losses are summed before the
    backward pass; no gradient crosses from one to another. A model whose loss stops being finite is
    recorded in `nonfinite_step` and takes no further steps; the others go on. At the end the trained
    weights are written back into `models`. `callback(state)` runs after every `every`-th step (and at
    the step where `max_steps` ends training); setting `state.stop` ends training.

    Args:
        models: G modules with the same architecture (same parameter names and shapes, no buffers).
        train: (x, y) tensors; the loss is loss_fn(model(x[batch]), y[batch]).
        lr: one learning rate for all, or a sequence of G.
        seed: one seed, so every model sees the same mini-batches (a paired comparison), or a
            sequence of G seeds, one shuffling order per model (each as `fit(seed=seed[g])` would draw).
    """
    from torch.func import vmap

    from dlterms.optim import SGD
    from dlterms.stacked import ModelStack

    models = list(models)
    if not models:
        raise ValueError("models must hold at least one model")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an integer >= 1, got {every!r}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    g_count = len(models)
    lrs = [float(lr)] * g_count if isinstance(lr, int | float) else [float(v) for v in lr]
    if len(lrs) != g_count or not all(v > 0 for v in lrs):
        raise ValueError(f"lr must be one positive number or {g_count} of them, got {lr!r}")
    seeds = [seed] if isinstance(seed, int) else [int(v) for v in seed]
    if len(seeds) not in (1, g_count):
        raise ValueError(f"seed must be one integer or {g_count} of them, got {seed!r}")
    tensors = _as_tensors(train)
    if len(tensors) != 2:
        raise ValueError(f"train must be (x, y), got {len(tensors)} tensors")
    x, y = tensors
    dev = next((p.device for p in models[0].parameters()), torch.device("cpu"))
    x, y = x.to(dev), y.to(dev)
    stack = ModelStack(models).to(dev)  # name -> (G, ...) leaves, each model's own slice
    params = stack.params
    lr_max = max(lrs)
    scale = torch.tensor([v / lr_max for v in lrs], dtype=torch.float64, device=dev)
    opt = SGD(list(params.values()), lr=lr_max, momentum=momentum)
    alive = torch.ones(g_count, dtype=torch.bool, device=dev)

    shared = len(seeds) == 1  # one batch order: every model sees the same mini-batch
    per_model_loss = vmap(loss_fn, in_dims=(0, None if shared else 0))

    def batched_loss(xb, yb):
        return per_model_loss(stack(xb, shared=shared), yb)  # (G,)

    @torch.no_grad()
    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return stack(inputs.to(dev), shared=True)

    gens = [torch.Generator().manual_seed(v) for v in seeds]
    step_losses, epoch_losses = [], []
    nonfinite: list[int | None] = [None] * g_count
    step, epochs_run, stop = 0, 0, False
    n = len(y)
    for epoch in range(epochs):
        total, count = 0.0, 0
        orders = [batches(n, batch_size, gen, shuffle, drop_last) for gen in gens]
        for parts in zip(*orders):
            idx = parts[0].to(dev) if len(parts) == 1 else torch.stack(parts).to(dev)  # (B,) or (G, B)
            losses = batched_loss(x[idx], y[idx])  # (G,)
            finite = torch.isfinite(losses.detach())
            for g in torch.nonzero(alive & ~finite).flatten().tolist():
                nonfinite[g] = step
            alive &= finite
            opt.zero_grad(set_to_none=True)
            (scale.to(losses.dtype) * torch.where(alive, losses, torch.zeros_like(losses))).sum().backward()
            if not bool(alive.all()):
                with torch.no_grad():  # a diverged model takes no more steps
                    for v in params.values():
                        v.grad[~alive] = 0
                        buf = opt.state[v].get("momentum_buffer")
                        if buf is not None:
                            buf[~alive] = 0
            opt.step()
            step += 1
            value = losses.detach()
            step_losses.append(value)
            total += value * idx.shape[-1]
            count += idx.shape[-1]
            if max_steps is not None and step >= max_steps:
                stop = True
            if callback is not None and (step % every == 0 or stop):
                state = StackedState(step=step, epoch=epoch, losses=value, forward=forward)
                callback(state)
                stop = stop or state.stop
            if stop or not bool(alive.any()):
                stop = True
                break
        if count:
            epoch_losses.append(total / count)
            epochs_run = epoch + 1
        if stop:
            break
    with torch.no_grad():
        for g, model in enumerate(models):
            for k, v in params.items():
                model.get_parameter(k).copy_(v[g])
    return StackedHistory(
        step_loss=torch.stack(step_losses) if step_losses else torch.empty(0, g_count),
        train_loss=torch.stack(epoch_losses) if epoch_losses else torch.empty(0, g_count),
        nonfinite_step=nonfinite,
        steps=step,
        epochs_run=epochs_run,
    )
