r"""A NumPy-backed tensor that records how it was computed, and reverse-mode differentiation over that record.

A `Tensor` holds an n-dimensional array (`data`, rank = number of axes: 0 for a scalar, 1 for a
vector, 2 for a matrix, 4 for a batch of images (B, C, H, W)). Every operation on tensors that
require gradients returns a new tensor that remembers its inputs (`_prev`) and a function
(`_backward`) giving its *local* chain rule: from the gradient of the loss with respect to its output,
$\bar y = \partial L / \partial y$, the gradients with respect to each input, $\bar x = \bar y\,
\partial y / \partial x$. Each op's local derivative sits next to its forward, as in Karpathy's
micrograd (2020), here for whole arrays instead of scalars.

`loss.backward()` is backpropagation (Rumelhart, Hinton & Williams, 1986; reverse-mode automatic
differentiation, Linnainmaa 1970): sort the graph topologically, seed $\bar L = 1$, and visit nodes from
the output back to the inputs, so every node's gradient is complete (summed over all its uses) before it
is pushed further:
$$\bar x = \sum_{y \,:\, x \to y} \bar y\, \frac{\partial y}{\partial x}.$$

Broadcasting: when an input of shape $s$ was broadcast to the output's shape, each of its entries was
used many times, so its gradient is the sum of the output gradient over the broadcast axes
(`_unbroadcast`). Local derivatives used below, with $g = \bar y$:

| op | forward | backward |
|---|---|---|
| add | $a + b$ | $g,\ g$ |
| mul | $a b$ | $g b,\ g a$ |
| div | $a / b$ | $g / b,\ -g a / b^2$ |
| pow | $a^p$ | $g\,p\,a^{p-1}$ |
| matmul | $A B$ | $G B^\top,\ A^\top G$ |
| exp, log | $e^a$, $\log a$ | $g e^a$, $g / a$ |
| tanh, sigmoid | $t$, $s$ | $g(1 - t^2)$, $g s (1 - s)$ |
| relu | $\max(0, a)$ | $g\,[a > 0]$ |
| sum | $\sum_{\text{axes}} a$ | $g$ broadcast back |
| max | $\max_{\text{axes}} a$ | $g$ shared equally by the maxima |
| log_softmax | $a - m - \log\sum e^{a - m}$ | $g - \mathrm{softmax}(a) \sum g$ |

Only leaves (tensors created directly, e.g. parameters) keep `.grad` after `backward()`, and it
accumulates over calls until `zero_grad()`, as in PyTorch. Gradients have the data's dtype; use
float64 to compare with finite differences.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

__all__ = ["Tensor", "tensor", "zeros", "ones", "randn", "cat", "stack", "no_grad", "is_grad_enabled"]

_GRAD_ENABLED = True

Backward = Callable[[np.ndarray], tuple["np.ndarray | None", ...]]


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block operations record no graph (e.g. for parameter updates)."""
    global _GRAD_ENABLED
    prev, _GRAD_ENABLED = _GRAD_ENABLED, False
    try:
        yield
    finally:
        _GRAD_ENABLED = prev


def is_grad_enabled() -> bool:
    return _GRAD_ENABLED


def _as_array(data) -> np.ndarray:
    if isinstance(data, Tensor):
        return data.data
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)  # integers and booleans become float64 values
    return arr


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes along which an input of `shape` was broadcast to grad.shape."""
    while grad.ndim > len(shape):  # leading axes the input did not have
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:  # axes of size 1 stretched by broadcasting
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """Axes as sorted non-negative ints; a rank-0 tensor accepts 0 and -1 (as torch) and has none."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer) or not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(
                f"axis must be an integer in [{-max(ndim, 1)}, {max(ndim, 1) - 1}] for a {ndim}-D tensor, got {axis!r}"
            )
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"axis must not repeat an axis, got {axis!r}")
    return tuple(sorted(out)) if ndim else ()


def _expand_reduced(g: np.ndarray, axes: tuple[int, ...], keepdims: bool, shape: tuple[int, ...]) -> np.ndarray:
    """Give a reduced gradient back the reduced axes (size 1), then broadcast it to `shape`."""
    if not keepdims and len(shape) > 0:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


class Tensor:
    """An array with an optional gradient and a record of the operation that produced it.

    Args:
        data: anything `numpy.asarray` accepts; integers become float64.
        requires_grad: track operations on it so `backward()` fills its `.grad`.
    """

    __array_priority__ = 1000  # numpy defers to our reflected operators (np.float64(2) * t is a Tensor)

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        arr = _as_array(data)
        if dtype is not None:
            arr = arr.astype(dtype)
        if requires_grad and not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"only floating tensors can require gradients, got dtype {arr.dtype}")
        self.data: np.ndarray = arr
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._prev: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None  # None for a leaf
        self._op = ""
        self._retain = False

    # ------------------------------------------------------------------ graph building

    @staticmethod
    def _make(data: np.ndarray, parents: tuple[Tensor, ...], backward: Backward, op: str) -> Tensor:
        out = Tensor(data)
        if _GRAD_ENABLED and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._prev = parents
            out._backward = backward
            out._op = op
        return out

    @staticmethod
    def _lift(other) -> Tensor:
        return other if isinstance(other, Tensor) else Tensor(other)

    # ------------------------------------------------------------------ properties

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        extra = f", grad_fn=<{self._op}>" if self._op else ""
        if not extra and self.requires_grad:
            extra = ", requires_grad=True"
        return f"Tensor({np.array2string(self.data, precision=4, separator=', ')}{extra})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this non-leaf tensor after `backward()`."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------------ backpropagation

    def _topological_order(self) -> list[Tensor]:
        """Every node this one depends on (that requires grad), each after all of its inputs."""
        order: list[Tensor] = []
        seen: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:  # iterative depth-first search: deep graphs do not hit the recursion limit
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._prev if p.requires_grad and id(p) not in seen)
        return order

    def backward(self, gradient=None) -> None:
        r"""Accumulate $\partial\,\text{self} / \partial x$ into `x.grad` for every leaf x that requires grad.

        Args:
            gradient: $\partial L / \partial\,\text{self}$, same shape as self; may be omitted for a
                one-element tensor (then 1).
        """
        if not self.requires_grad:
            raise ValueError(
                "backward() called on a tensor that does not require grad (create the inputs with requires_grad=True)"
            )
        if gradient is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() without a gradient needs a one-element tensor, got shape "
                    f"{self.shape}; pass gradient= of the same shape"
                )
            gradient = np.ones_like(self.data)
        gradient = _as_array(gradient)
        if gradient.shape != self.shape:
            raise ValueError(f"gradient must have shape {self.shape}, got {gradient.shape}")
        grads: dict[int, np.ndarray] = {id(self): gradient}
        # Reverse topological order: a node is visited only after every node that uses it, so its
        # gradient, summed over all uses, is complete when it is passed on.
        for node in reversed(self._topological_order()):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None or node._retain:
                node.grad = g.copy() if node.grad is None else node.grad + g
            if node._backward is None:
                continue
            for parent, pg in zip(node._prev, node._backward(g), strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                pg = np.asarray(pg, dtype=parent.data.dtype)
                assert pg.shape == parent.shape, (node._op, pg.shape, parent.shape)
                grads[id(parent)] = grads[id(parent)] + pg if id(parent) in grads else pg

    # ------------------------------------------------------------------ elementwise arithmetic

    def __add__(self, other) -> Tensor:
        o = self._lift(other)
        a_shape, b_shape = self.shape, o.shape

        def backward(g):  # d(a + b)/da = d(a + b)/db = 1
            return _unbroadcast(g, a_shape), _unbroadcast(g, b_shape)

        return self._make(self.data + o.data, (self, o), backward, "add")

    __radd__ = __add__

    def __neg__(self) -> Tensor:
        return self._make(-self.data, (self,), lambda g: (-g,), "neg")

    def __sub__(self, other) -> Tensor:
        o = self._lift(other)
        a_shape, b_shape = self.shape, o.shape

        def backward(g):  # d(a - b)/da = 1, d(a - b)/db = -1
            return _unbroadcast(g, a_shape), _unbroadcast(-g, b_shape)

        return self._make(self.data - o.data, (self, o), backward, "sub")

    def __rsub__(self, other) -> Tensor:
        return self._lift(other) - self

    def __mul__(self, other) -> Tensor:
        o = self._lift(other)
        a, b = self.data, o.data

        def backward(g):  # d(ab)/da = b, d(ab)/db = a
            return _unbroadcast(g * b, a.shape), _unbroadcast(g * a, b.shape)

        return self._make(a * b, (self, o), backward, "mul")

    __rmul__ = __mul__

    def __truediv__(self, other) -> Tensor:
        o = self._lift(other)
        a, b = self.data, o.data

        def backward(g):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
            return _unbroadcast(g / b, a.shape), _unbroadcast(-g * a / (b * b), b.shape)

        return self._make(a / b, (self, o), backward, "div")

    def __rtruediv__(self, other) -> Tensor:
        return self._lift(other) / self

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor) or not isinstance(exponent, int | float | np.integer | np.floating):
            raise ValueError(f"exponent must be a Python or NumPy number, got {type(exponent).__name__}")
        a, p = self.data, float(exponent)

        def backward(g):  # d(a^p)/da = p a^(p-1)
            return (g * p * a ** (p - 1),)

        return self._make(a**p, (self,), backward, "pow")

    # ------------------------------------------------------------------ elementwise functions

    def exp(self) -> Tensor:
        y = np.exp(self.data)
        return self._make(y, (self,), lambda g: (g * y,), "exp")  # d e^a/da = e^a

    def log(self) -> Tensor:
        a = self.data
        return self._make(np.log(a), (self,), lambda g: (g / a,), "log")  # d log a/da = 1/a

    def sqrt(self) -> Tensor:
        return self**0.5

    def abs(self) -> Tensor:
        a = self.data
        return self._make(np.abs(a), (self,), lambda g: (g * np.sign(a),), "abs")  # 0 at a = 0, as torch

    def tanh(self) -> Tensor:
        t = np.tanh(self.data)
        return self._make(t, (self,), lambda g: (g * (1.0 - t * t),), "tanh")  # 1 - tanh^2

    def sigmoid(self) -> Tensor:
        a = self.data
        e = np.exp(-np.abs(a))  # in (0, 1]: no overflow for any a
        s = np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype)
        return self._make(s, (self,), lambda g: (g * s * (1.0 - s),), "sigmoid")  # s (1 - s)

    def relu(self) -> Tensor:
        a = self.data
        return self._make(np.maximum(a, 0), (self,), lambda g: (g * (a > 0),), "relu")  # [a > 0]

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        if not math.isfinite(negative_slope):
            raise ValueError(f"negative_slope must be a finite number, got {negative_slope}")
        a = self.data
        slope = np.where(a > 0, 1.0, negative_slope).astype(a.dtype)
        return self._make(a * slope, (self,), lambda g: (g * slope,), "leaky_relu")

    def gelu(self) -> Tensor:
        from scipy.special import erf

        a = self.data
        cdf = 0.5 * (1.0 + erf(a / math.sqrt(2.0)))  # Phi(a)
        pdf = np.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)  # phi(a)
        return self._make(a * cdf, (self,), lambda g: (g * (cdf + a * pdf),), "gelu")  # Phi + a phi

    # ------------------------------------------------------------------ reductions

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        axes = _normalize_axes(axis, self.ndim)
        shape = self.shape

        def backward(g):  # each input entry contributed once to its sum
            return (_expand_reduced(g, axes, keepdims, shape),)

        return self._make(self.data.sum(axis=axes, keepdims=keepdims), (self,), backward, "sum")

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        axes = _normalize_axes(axis, self.ndim)
        count = math.prod(self.shape[a] for a in axes) if self.ndim else 1
        if count == 0:
            raise ValueError(f"mean over an empty axis is undefined (shape {self.shape}, axis {axis!r})")
        return self.sum(axis=axis, keepdims=keepdims) / count

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        """Largest entries over `axis` (torch.amax): tied maxima share the gradient equally."""
        axes = _normalize_axes(axis, self.ndim)
        a = self.data
        if a.size == 0:
            raise ValueError(f"max of an empty tensor is undefined (shape {self.shape})")
        m = a.max(axis=axes, keepdims=True)
        mask = (a == m).astype(a.dtype)
        share = mask / mask.sum(axis=axes, keepdims=True)  # 1/k for each of k tied maxima

        def backward(g):
            return (_expand_reduced(g, axes, keepdims, a.shape) * share,)

        out = m if keepdims else m.reshape([s for i, s in enumerate(a.shape) if i not in axes])
        return self._make(out, (self,), backward, "max")

    def min(self, axis=None, keepdims: bool = False) -> Tensor:
        return -((-self).max(axis=axis, keepdims=keepdims))

    def var(self, axis=None, keepdims: bool = False, correction: int = 1) -> Tensor:
        r"""$\frac{1}{n - c}\sum (a - \bar a)^2$ (torch's default correction c = 1)."""
        axes = _normalize_axes(axis, self.ndim)
        n = math.prod(self.shape[a] for a in axes) if self.ndim else 1
        if n - correction <= 0:
            raise ValueError(f"var needs more than correction={correction} elements, got {n}")
        d = self - self.mean(axis=axis, keepdims=True)
        return (d * d).sum(axis=axis, keepdims=keepdims) / (n - correction)

    # ------------------------------------------------------------------ shape

    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        old = self.shape
        try:
            y = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {old} into shape {shape}") from None
        return self._make(y, (self,), lambda g: (g.reshape(old),), "reshape")

    def permute(self, *axes) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], tuple | list):
            axes = tuple(axes[0])
        if self.ndim == 0 and axes in ((), (0,), (-1,)):
            return self
        if sorted(a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(f"axes must be a permutation of 0..{self.ndim - 1}, got {axes}")
        inverse = np.argsort([a % self.ndim for a in axes])
        y = np.transpose(self.data, axes)
        return self._make(y, (self,), lambda g: (np.transpose(g, inverse),), "permute")

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (default: the last two, a batched matrix transpose)."""
        if self.ndim < 2:
            return self
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's and torch's name
        """All axes reversed (a matrix's transpose)."""
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, index) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data.astype(np.int64)
        elif isinstance(index, tuple):
            index = tuple(i.data.astype(np.int64) if isinstance(i, Tensor) else i for i in index)
        a = self.data

        def backward(g):  # scatter-add: an entry picked twice gets both gradients
            full = np.zeros_like(a)
            np.add.at(full, index, g)
            return (full,)

        return self._make(a[index], (self,), backward, "index")

    # ------------------------------------------------------------------ linear algebra

    def __matmul__(self, other) -> Tensor:
        o = self._lift(other)
        a, b = self.data, o.data
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs tensors of rank >= 1, got shapes {a.shape} and {b.shape}")
        y = a @ b  # (..., n, k) @ (..., k, m) -> (..., n, m), batch axes broadcast

        def backward(g):
            # Promote 1-D operands to matrices, as matmul does: a (k,) -> (1, k), b (k,) -> (k, 1).
            a2 = a[None, :] if a.ndim == 1 else a
            b2 = b[:, None] if b.ndim == 1 else b
            g2 = np.asarray(g)
            if b.ndim == 1:  # output (..., n) -> (..., n, 1)
                g2 = g2[..., None]
            if a.ndim == 1:  # output (..., m) -> (..., 1, m)
                g2 = np.expand_dims(g2, -2)
            ga = g2 @ np.swapaxes(b2, -1, -2)  # dL/dA = G B^T   (..., n, k)
            gb = np.swapaxes(a2, -1, -2) @ g2  # dL/dB = A^T G   (..., k, m)
            return (_unbroadcast(ga, a2.shape).reshape(a.shape), _unbroadcast(gb, b2.shape).reshape(b.shape))

        return self._make(y, (self, o), backward, "matmul")

    def __rmatmul__(self, other) -> Tensor:
        return self._lift(other) @ self

    # ------------------------------------------------------------------ softmax family

    def log_softmax(self, axis: int = -1) -> Tensor:
        r"""$(a - m) - \log\sum e^{a - m}$ along `axis`; backward $g - \mathrm{softmax}(a)\sum g$."""
        (ax,) = _normalize_axes(axis, self.ndim)
        a = self.data
        shifted = a - a.max(axis=ax, keepdims=True)  # every exponent <= 0
        lse = np.log(np.exp(shifted).sum(axis=ax, keepdims=True))
        y = shifted - lse
        p = np.exp(y)  # softmax(a)

        def backward(g):
            return (g - p * g.sum(axis=ax, keepdims=True),)

        return self._make(y, (self,), backward, "log_softmax")

    def softmax(self, axis: int = -1) -> Tensor:
        r"""$e^{a - m} / \sum e^{a - m}$ along `axis`; backward $p\,(g - \sum g p)$."""
        (ax,) = _normalize_axes(axis, self.ndim)
        a = self.data
        e = np.exp(a - a.max(axis=ax, keepdims=True))
        p = e / e.sum(axis=ax, keepdims=True)

        def backward(g):
            return (p * (g - (g * p).sum(axis=ax, keepdims=True)),)

        return self._make(p, (self,), backward, "softmax")

    def cross_entropy(self, target) -> Tensor:
        r"""Mean $-\log \mathrm{softmax}(z)_{y}$ over rows of logits (N, C), targets (N,) of class indices."""
        t = np.asarray(target.data if isinstance(target, Tensor) else target)
        if self.ndim != 2 or t.shape != (self.shape[0],):
            raise ValueError(f"cross_entropy needs logits (N, C) and targets (N,), got {self.shape} and {t.shape}")
        t = t.astype(np.int64)
        if t.size and (t.min() < 0 or t.max() >= self.shape[1]):
            raise ValueError(
                f"targets must be class indices in [0, {self.shape[1] - 1}], got range [{t.min()}, {t.max()}]"
            )
        logp = self.log_softmax(axis=1)
        return -logp[np.arange(len(t)), t].mean()

    def mse_loss(self, target) -> Tensor:
        """Mean squared error against `target` (same shape)."""
        o = self._lift(target)
        if o.shape != self.shape:
            raise ValueError(f"mse_loss needs input and target of the same shape, got {self.shape} and {o.shape}")
        d = self - o
        return (d * d).mean()


# ---------------------------------------------------------------------- constructors and joins


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, rng: np.random.Generator | None = None, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    rng = rng if rng is not None else np.random.default_rng()
    return Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis; the gradient is split back at the same boundaries."""
    ts = [Tensor._lift(t) for t in tensors]
    if not ts:
        raise ValueError("cat needs at least one tensor")
    (ax,) = _normalize_axes(axis, ts[0].ndim)
    bounds = np.cumsum([t.shape[ax] for t in ts])[:-1]

    def backward(g):
        return tuple(np.split(g, bounds, axis=ax))

    return Tensor._make(np.concatenate([t.data for t in ts], axis=ax), tuple(ts), backward, "cat")


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    ts = [Tensor._lift(t) for t in tensors]
    if not ts:
        raise ValueError("stack needs at least one tensor")
    (ax,) = _normalize_axes(axis, ts[0].ndim + 1)
    shape = ts[0].shape
    return cat([t.reshape(shape[:ax] + (1,) + shape[ax:]) for t in ts], axis=ax)
