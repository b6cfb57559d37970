"""Activation function: what the nonlinearity between layers buys.

The same 4-layer network (2-32-32-32-2, `dlterms.nn.MLP`) is trained on the two moons (noise 0.1, 700
training points, tested on 20 000 more from the same distribution) twice: with the identity as
activation and with ReLU. With the identity, the layers multiply out to one affine map
$W_4 W_3 W_2 W_1 x + b'$; we form that single matrix from the trained weights and compare its outputs
with the network's (max error < 1e-5, the spec, both for a float64 copy and for the trained float32
network), and its accuracy stays where logistic regression's is (within 2 points, and <= 0.90). The
best any line achieves on this distribution is about 0.884 (a search over directions and offsets on
400 000 points), and the 20 000 test points put the sampling error near 0.002, so "<= 0.90" is a
statement about the distribution (with 300 test points one seed's draw let a line score 0.907). With
ReLU the same architecture reaches >= 0.97. Every arm uses Adam with its step size cosine-annealed to
0. Our sigmoid, tanh, ReLU, leaky ReLU and GELU, and their hand-written derivatives, are also compared
with torch's on a grid (max error < 1e-6).

Thresholds: docs/experiments.md#activation-function.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlterms.data.datasets import moons
from dlterms.experiments.foundations._common import plot_decision_regions, train_classifier
from dlterms.nn import MLP, activations
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the activation-function experiment; the defaults are the recorded run."""

    n_train: int = 700  # training points
    n_test: int = 20_000  # test points: accuracies of the distribution, not of one small draw
    noise: float = 0.1  # std of the Gaussian noise on each point
    sizes: tuple[int, ...] = (2, 32, 32, 32, 2)  # layer sizes of the network (four linear layers)
    epochs: int = 60  # training epochs of each network
    batch_size: int = 64  # minibatch size
    lr: float = 0.01  # Adam step size of both networks, cosine-annealed to 0 (constant: ReLU 0.98 at seed 11)
    lr_linear: float = 0.05  # Adam step size for the logistic-regression baseline

    def __post_init__(self) -> None:
        if len(self.sizes) < 3 or self.sizes[0] != 2 or self.sizes[-1] != 2:
            raise ValueError(f"sizes must start and end at 2 with a hidden layer between, got {self.sizes!r}")
        if self.n_train < 10 or self.n_test < 10:
            raise ValueError(f"n_train and n_test must be >= 10, got {self.n_train!r} and {self.n_test!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs!r} and {self.batch_size!r}")


def collapse_to_one_affine_map(net: MLP) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) with net(x) = x W^T + b for an MLP whose activations are the identity."""
    layers = net.linear_layers
    w = torch.eye(layers[0].in_features, dtype=torch.float64)  # (n_in, n_in)
    b = torch.zeros(layers[0].in_features, dtype=torch.float64)
    for layer in layers:  # W <- W_l W, b <- W_l b + b_l
        wl, bl = layer.weight.detach().double().cpu(), layer.bias.detach().double().cpu()
        w, b = wl @ w, wl @ b + bl  # (n_out_l, n_in)
    return w, b


@experiment("activation-function", config=Config)
def activation_function(run: Run, cfg: Config) -> None:
    data = moons(n=cfg.n_train + cfg.n_test, noise=cfg.noise, test_size=cfg.n_test, seed=run.seed).to(run.device)

    # 1. Our activations and derivatives against torch on a grid.
    z = torch.linspace(-8, 8, 2001, dtype=torch.float64)
    refs = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "leaky_relu": F.leaky_relu, "gelu": F.gelu}
    worst_value, worst_grad = 0.0, 0.0
    for name, ref in refs.items():
        _, fn, dfn = activations.ACTIVATIONS[name]
        zr = z.clone().requires_grad_(True)
        (dref,) = torch.autograd.grad(ref(zr).sum(), zr)
        worst_value = max(worst_value, (fn(z) - ref(z)).abs().max().item())
        worst_grad = max(worst_grad, (dfn(z) - dref).abs().max().item())
    run.metric("max_abs_error_vs_torch", worst_value)
    run.metric("max_abs_derivative_error_vs_torch", worst_grad)
    run.check_le("sigmoid, tanh, ReLU, leaky ReLU, GELU match torch", worst_value, 1e-6, strict=True)
    run.check_le("their hand-written derivatives match torch.autograd", worst_grad, 1e-6, strict=True)

    # 2. The same 4-layer network with identity and with ReLU activations.
    nets, accs = {}, {}
    for i, act in enumerate(("identity", "relu")):
        torch.manual_seed(run.seed)
        nets[act] = MLP(list(cfg.sizes), activation=act)
        accs[act], _ = train_classifier(
            nets[act],
            data,
            lr=cfg.lr,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            seed=run.seed,
            device=run.device,
            cosine=True,
        )
        run.progress(0.3 + 0.3 * i, f"{act} network trained")
    logistic = MLP([2, 2])
    acc_lin, _ = train_classifier(
        logistic,
        data,
        lr=cfg.lr_linear,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=run.seed,
        device=run.device,
        cosine=True,
    )

    # 3. The identity network is one affine map: compare its outputs with x W^T + b' (float64).
    w, b = collapse_to_one_affine_map(nets["identity"])
    x64 = data.x_test.double().cpu()
    deep64 = MLP(list(cfg.sizes), activation="identity").double()
    deep64.load_state_dict({k: v.double().cpu() for k, v in nets["identity"].state_dict().items()})
    with torch.no_grad():
        err = (deep64(x64) - (x64 @ w.T + b)).abs().max().item()
        err32 = (nets["identity"](data.x_test).double().cpu() - (x64 @ w.T + b)).abs().max().item()

    run.metric("collapse_max_abs_error", err)
    run.metric("collapse_max_abs_error_float32_net", err32)  # the trained float32 net: rounding only
    run.metric("test_acc_identity_4_layers", accs["identity"])
    run.metric("test_acc_logistic", acc_lin)
    run.metric("test_acc_relu_4_layers", accs["relu"], key=True)
    run.check(
        "4 identity-activation layers multiply to one matrix W4 W3 W2 W1 (float64 and the float32 net)",
        max(err, err32) < 1e-5,
        observed=f"{err:.1e} / {err32:.1e}",
        expected="< 1e-5",
    )
    gap = abs(accs["identity"] - acc_lin)
    run.check(
        "with identity activations the deep net stays at linear accuracy (vs logistic regression)",
        gap <= 0.02 and accs["identity"] <= 0.90,
        observed=f"{accs['identity']:.4f} vs {acc_lin:.4f}",
        expected="within 0.02 of logistic and <= 0.90",
    )
    run.check_ge("with ReLU the same architecture separates the moons", accs["relu"], 0.97)

    with run.figure(
        "identity-vs-relu",
        alt="left: the five activation functions; middle: the identity network's "
        "straight decision boundary; right: the ReLU network's curved one",
        figsize=(12, 3.8),
    ) as fig:
        ax0, ax1, ax2 = fig.subplots(1, 3)
        zz = torch.linspace(-4, 4, 400)
        for name in ("identity", *refs):
            ax0.plot(zz, activations.ACTIVATIONS[name][1](zz), label=name, lw=1.5)
        ax0.set_ylim(-1.5, 3)
        ax0.axhline(0, color="grey", lw=0.5)
        ax0.set_xlabel("pre-activation $z$")
        ax0.set_ylabel(r"$\phi(z)$")
        ax0.set_title("activation functions", fontsize=10)
        ax0.legend(fontsize=8)
        x, y = data.x_test[:300], data.y_test[:300]  # a sample of the test points, for legibility
        plot_decision_regions(ax1, nets["identity"], x, y, f"4 layers, identity: {accs['identity']:.1%}")
        plot_decision_regions(ax2, nets["relu"], x, y, f"4 layers, ReLU: {accs['relu']:.1%}")
