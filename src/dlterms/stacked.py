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

Convolutional networks take another route, because our convolution's autograd Function cannot run
under `vmap`: `side_by_side_body` turns M conv bodies of one architecture into one network whose
every convolution has M groups (group k holds model k's kernels and reads only model k's channels), and
`ConvNetStack` puts M `dlterms.models.cnn.ConvNet`s side by side that way, their linear heads a
`ModelStack`. The same gradient argument holds: no parameter of model k touches another model's
channels, so each model's block of the joint parameters gets its own gradient.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["ConvNetStack", "ModelStack", "side_by_side_body", "write_back_body"]


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


# ---- convolutional networks side by side: one grouped network instead of vmap


def _channelwise() -> tuple[type, ...]:
    """Layers that act on every channel alone, so M models' copies of them are one copy on M*C channels."""
    from dlterms.nn.activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
    from dlterms.nn.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d

    return (ReLU, LeakyReLU, GELU, Sigmoid, Tanh, Identity, MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d)


def side_by_side_body(bodies: Sequence[nn.Sequential]) -> nn.Sequential:
    """M conv bodies of one architecture as one network on (B, M*C, *spatial) inputs, model k's channels
    the k-th block of every layer: each convolution becomes one with M groups (group k holds model k's
    kernels, so it reads only model k's channels), each batch norm one over M*C channels (per-channel
    statistics, so model k's from its own examples), and activations and pooling act on every channel
    alone. Flattened, the output (B, M*d) holds model k's features in its k-th block of d, in the
    model's own order. The parameters and running statistics are copies of the bodies'."""
    from dlterms.nn import BatchNorm1d, BatchNorm2d, Conv1d, Conv2d

    if not bodies:
        raise ValueError("bodies must hold at least one conv body, got none")
    m = len(bodies)
    channelwise = _channelwise()
    layers: list[nn.Module] = []
    for parts in zip(*bodies, strict=True):
        first = parts[0]
        if any(type(p) is not type(first) for p in parts):
            raise ValueError("the bodies must have one architecture")
        if isinstance(first, Conv1d | Conv2d):
            if first.groups != 1:
                raise ValueError(f"only ungrouped convolutions can be put side by side, got groups={first.groups}")
            layer = type(first)(
                m * first.in_channels,
                m * first.out_channels,
                first.kernel_size,
                stride=first.stride,
                padding=first.padding,
                dilation=first.dilation,
                groups=m,
                bias=first.bias is not None,
            )
        elif isinstance(first, BatchNorm1d | BatchNorm2d):
            layer = type(first)(
                m * first.num_features, first.eps, first.momentum, first.affine, first.track_running_stats
            )
        elif isinstance(first, channelwise):
            layer = copy.deepcopy(first)
        else:
            raise ValueError(f"cannot put a {type(first).__name__} side by side")
        with torch.no_grad():
            for name, t in [*layer.named_parameters(recurse=False), *layer.named_buffers(recurse=False)]:
                if name == "num_batches_tracked":
                    t.copy_(getattr(first, name))
                else:  # the M models' tensors, stacked along the channel dimension
                    t.copy_(torch.cat([getattr(p, name) for p in parts]))
        layers.append(layer)
    like = next(bodies[0].parameters())
    return nn.Sequential(*layers).to(device=like.device, dtype=like.dtype)


@torch.no_grad()
def write_back_body(body: nn.Sequential, bodies: Sequence[nn.Sequential]) -> None:
    """Copy each model's block of the side-by-side body's parameters and running statistics into its own body."""
    for k, own in enumerate(bodies):
        for layer, mine in zip(body, own):
            for name, t in [*mine.named_parameters(recurse=False), *mine.named_buffers(recurse=False)]:
                src = getattr(layer, name)
                t.copy_(src if name == "num_batches_tracked" else src[k * len(t) : (k + 1) * len(t)])


class ConvNetStack:
    """M `dlterms.models.cnn.ConvNet`s of one architecture (no dropout) as one model: the conv bodies
    side by side (`side_by_side_body`), the linear heads a `ModelStack`. `stack(x)` maps x (M, B, C,
    *spatial), model k's inputs x[k], to (M, B, n_classes); an element-wise optimizer on
    `stack.parameters()` trains model k as it would be trained alone on its own inputs (see the module
    docstring), up to float rounding. The models are not modified until `write_back()`.

        stack = ConvNetStack([make_cnn(seed) for seed in seeds])
        opt = Adam(stack.parameters(), lr=5e-3)
        loss = len(stack) * cross_entropy(stack(x).flatten(0, 1), y.flatten())  # sum of the M mean losses
    """

    def __init__(self, models: Iterable[nn.Module]):
        models = list(models)
        if not models:
            raise ValueError("models must hold at least one ConvNet, got none")
        for i, m in enumerate(models):
            # a ConvNet by its parts: importing dlterms.models.cnn here would close an import cycle
            if not all(hasattr(m, a) for a in ("features", "head", "dropout", "input_size", "n_features")):
                raise ValueError(f"models[{i}] must be a ConvNet, got {type(m).__name__}")
            if m.dropout is not None:
                raise ValueError(f"models[{i}] has dropout before its head; a ConvNetStack does not support it")
            if (m.in_channels, m.input_size, m.n_features) != (
                models[0].in_channels,
                models[0].input_size,
                models[0].n_features,
            ):
                raise ValueError(f"models[{i}] has another input or feature size than models[0]")
        self.models = models
        self.size = len(models)
        self.body = side_by_side_body([m.features for m in models])
        self.head = ModelStack([m.head for m in models])

    def __len__(self) -> int:
        return self.size

    def parameters(self) -> list[Tensor]:
        return [*self.body.parameters(), *self.head.parameters()]

    def train(self, mode: bool = True) -> ConvNetStack:
        self.body.train(mode)
        return self

    def eval(self) -> ConvNetStack:
        return self.train(False)

    def __call__(self, x: Tensor) -> Tensor:
        first = self.models[0]
        want = (self.size, first.in_channels, *first.input_size)
        if x.dim() != len(want) + 1 or (x.shape[0], *x.shape[2:]) != want:
            shape = ", ".join(map(str, (self.size, "B", *want[1:])))
            raise ValueError(f"x must have shape ({shape}), got {tuple(x.shape)}")
        b = x.shape[1]
        h = self.body(x.transpose(0, 1).flatten(1, 2))  # (B, M*C, ...): model k's channels in block k
        return self.head(h.reshape(b, self.size, -1).transpose(0, 1))  # (M, B, d) -> (M, B, n_classes)

    @torch.no_grad()
    def write_back(self) -> list[nn.Module]:
        """Copy each model's current parameters (and running statistics) into it; returns the models."""
        write_back_body(self.body, [m.features for m in self.models])
        for k, m in enumerate(self.models):
            for name, p in m.head.named_parameters():
                p.copy_(self.head.params[name][k])
        return self.models
