"""A from-scratch NumPy tensor with reverse-mode automatic differentiation (backpropagation).

`Tensor` (in `tensor.py`) records each operation with its local derivative; `Tensor.backward()`
walks the record in reverse topological order. `nn.py` builds Linear layers, an MLP and SGD on it;
`gradcheck.py` checks gradients against central finite differences.
"""

from dlterms.autograd.gradcheck import numerical_gradient, relative_error
from dlterms.autograd.nn import MLP, SGD, Linear, Module, train
from dlterms.autograd.tensor import Tensor, cat, is_grad_enabled, no_grad, ones, randn, stack, tensor, zeros

__all__ = [
    "Tensor",
    "tensor",
    "zeros",
    "ones",
    "randn",
    "cat",
    "stack",
    "no_grad",
    "is_grad_enabled",
    "Module",
    "Linear",
    "MLP",
    "SGD",
    "train",
    "numerical_gradient",
    "relative_error",
]
