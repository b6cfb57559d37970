"""Layers written from their equations, with PyTorch's names and argument conventions.

Every layer is a `torch.nn.Module` built from tensor primitives (no call to the torch layer it
re-implements), so it trains with torch's autograd and is checked against torch in tests.
Dimension order is batch first: (B, C, L) for 1-D signals, (B, C, H, W) for images, (B, T, C) for
sequences; except where torch has a `batch_first` switch (the recurrent layers, multi-head attention
and the transformer), which keeps torch's default, time major (T, B, C). The project's own code
passes `batch_first=True` where it relies on it.

Used as `import dlterms.nn as nn`, the namespace also serves a model file written for torch.nn:

- infrastructure that is no concept of the glossary is torch's own, re-exported unchanged: `Module`,
  `Parameter`, `Sequential`, `ModuleList`, `ModuleDict`, `ParameterList`, `ParameterDict`, `Flatten`
  (`Identity` is ours, the identity activation, and takes torch's ignored arguments);
- `nn.functional` holds our functions under torch.nn.functional's names and signatures;
- `nn.init` is our initialisation module, `nn.CrossEntropyLoss`, `nn.NLLLoss`, ... are the loss modules
  of `dlterms.losses`.

Importing `dlterms.nn` allows its classes (and the containers above) in `torch.load(..., weights_only=True)`
through `torch.serialization.add_safe_globals` (the list is `SAFE_GLOBALS`), so `torch.save(model)` of a
model built from them loads back; a model class of your own still needs its own `add_safe_globals` call.
"""

import importlib as _importlib
import inspect as _inspect

import torch as _torch
from torch.nn import Flatten, Module, ModuleDict, ModuleList, Parameter, ParameterDict, ParameterList, Sequential

from dlterms.nn.activations import *  # noqa: F403
from dlterms.nn.attention import *  # noqa: F403
from dlterms.nn.capsules import *  # noqa: F403
from dlterms.nn.conv import *  # noqa: F403
from dlterms.nn.dropout import *  # noqa: F403
from dlterms.nn.embedding import *  # noqa: F403
from dlterms.nn.graph import *  # noqa: F403
from dlterms.nn.init import *  # noqa: F403
from dlterms.nn.linear import *  # noqa: F403
from dlterms.nn.normalization import *  # noqa: F403
from dlterms.nn.pooling import *  # noqa: F403
from dlterms.nn.positional import *  # noqa: F403
from dlterms.nn.recurrent import *  # noqa: F403
from dlterms.nn.residual import *  # noqa: F403
from dlterms.nn.spatial_transformer import *  # noqa: F403
from dlterms.nn.transformer import *  # noqa: F403

_INFRASTRUCTURE = (Module, Parameter, Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict, Flatten)

# Loss modules live in dlterms.losses, which imports dlterms.nn.activations: resolved on first use, so that
# importing either package first works.
_LOSSES = (
    "MSELoss",
    "L1Loss",
    "HuberLoss",
    "HingeLoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "BCEWithLogitsLoss",
)


def __getattr__(name: str):
    if name in _LOSSES:
        return getattr(_importlib.import_module("dlterms.losses"), name)
    if name == "functional":
        return _importlib.import_module("dlterms.nn.functional")
    raise AttributeError(f"module 'dlterms.nn' has no attribute {name!r}")


def _safe_globals() -> list:
    """Our module classes, the activation functions a module may hold as an attribute (a transformer
    block's `activation`), and the torch containers re-exported here (our TransformerEncoder holds a
    ModuleList; torch allows Parameter already)."""
    classes = [
        v
        for v in list(globals().values())
        if _inspect.isclass(v) and issubclass(v, _torch.nn.Module) and v.__module__.startswith("dlterms.")
    ]
    functions = [fn for _, fn, _ in ACTIVATIONS.values()] + [softmax, log_softmax]  # noqa: F405
    return classes + functions + [c for c in _INFRASTRUCTURE if c is not Parameter]


SAFE_GLOBALS = tuple(_safe_globals())
_torch.serialization.add_safe_globals(list(SAFE_GLOBALS))
