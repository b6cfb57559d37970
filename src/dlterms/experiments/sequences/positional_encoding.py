"""Positional encoding: (1) a transformer encoder without positional information is permutation-
equivariant: permuting the input tokens permutes its outputs the same way, checked in float64 to
1e-12 (rounding only); with sinusoidal encodings added it is not. (2) An order task: two marker tokens
A and B sit at random places among filler tokens; is A before B? Both labels have the same bag of
tokens, so a model without positions can do no better than chance (50 %); the same model with
sinusoidal or learned encodings solves it (>= 95 % test accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.losses import cross_entropy
from dlterms.nn import Embedding, Linear, TransformerEncoderLayer
from dlterms.nn.positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoidal_encoding
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import fit


@dataclass(frozen=True)
class Config:
    """Parameters of the positional-encoding experiment; the defaults are the recorded run."""

    length: int = 10  # tokens per sequence (A, B and fillers)
    vocab: int = 12  # token values: 0 = A, 1 = B, the rest fillers
    d_model: int = 32  # model width
    n_train: int = 3000  # training sequences of the order task
    n_test: int = 1000  # test sequences
    epochs: int = 5  # training epochs of each model
    lr: float = 3e-3  # Adam step size
    learned_init_std: float = 0.5  # standard deviation of the learned encodings at initialisation

    def __post_init__(self) -> None:
        if self.length < 2:
            raise ValueError(f"length must be >= 2 (A and B need two places), got {self.length!r}")
        if self.vocab < 3:
            raise ValueError(f"vocab must be >= 3 (A, B and a filler), got {self.vocab!r}")
        if self.d_model < 4 or self.d_model % 4:
            raise ValueError(
                f"d_model must be a positive multiple of 4 (4 heads, sine-cosine pairs), got {self.d_model!r}"
            )
        if self.n_train < 1 or self.n_test < 1 or self.epochs < 1:
            raise ValueError(
                f"n_train, n_test and epochs must be >= 1, got {self.n_train!r}, {self.n_test!r}, {self.epochs!r}"
            )
        if self.lr <= 0 or self.learned_init_std <= 0:
            raise ValueError(f"lr and learned_init_std must be > 0, got {self.lr!r} and {self.learned_init_std!r}")


class _OrderModel(torch.nn.Module):
    def __init__(self, pe: str, cfg: Config):
        super().__init__()
        T, D = cfg.length, cfg.d_model
        self.emb = Embedding(cfg.vocab, D)
        self.pe = {
            "none": torch.nn.Identity(),
            "sinusoidal": SinusoidalPositionalEncoding(D, max_len=T),
            "learned": LearnedPositionalEncoding(T, D, init_std=cfg.learned_init_std),
        }[pe]
        self.block = TransformerEncoderLayer(D, 4, 2 * D, dropout=0.0, batch_first=True)
        self.head = Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.pe(self.emb(x)))  # (B, T, D)
        return self.head(h.mean(1))  # order-blind pooling: all order information must come from the encoding


def _order_data(n: int, T: int, V: int, g: torch.Generator):
    x = torch.randint(2, V, (n, T), generator=g)
    pos = torch.stack([torch.randperm(T, generator=g)[:2] for _ in range(n)])  # distinct positions of A, B
    rows = torch.arange(n)
    x[rows, pos[:, 0]] = 0
    x[rows, pos[:, 1]] = 1
    return x, (pos[:, 0] < pos[:, 1]).long()


@experiment(
    "positional-encoding",
    config=Config,
    sweeps=(
        Sweep(
            "length",
            (5, 10, 20, 40),
            "Do sinusoidal positional encodings still solve the order task as sequences grow longer?",
            metric="test_acc_sinusoidal",
        ),
    ),
)
def positional_encoding(run: Run, cfg: Config) -> None:
    T = cfg.length
    torch.manual_seed(run.seed)
    g = run.generator(1)
    # ---- 1. permutation equivariance, exactly (float64)
    block = TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).double().eval()
    x = torch.randn(4, T, 16, generator=g, dtype=torch.float64)
    perm = torch.randperm(T, generator=g)
    pe = SinusoidalPositionalEncoding(16, max_len=T).double()
    with torch.no_grad():
        err = float((block(x[:, perm]) - block(x)[:, perm]).abs().max())
        err_pe = float((block(pe(x[:, perm])) - block(pe(x))[:, perm]).abs().max())
    run.metric("equivariance_error_without_pe", err)
    run.metric("equivariance_error_with_pe", err_pe)
    run.check(
        "without positions, f(permuted x) = permuted f(x)",
        err <= 1e-12,
        observed=err,
        expected="<= 1e-12 (float64 rounding)",
    )
    run.check_ge("with sinusoidal encodings the outputs are no longer a permutation", err_pe, 1e-2)

    # ---- 2. the order task
    n_tr, n_te = cfg.n_train, cfg.n_test
    x_all, y_all = _order_data(n_tr + n_te, T, cfg.vocab, g)
    accs = {}
    for k, kind in enumerate(("none", "sinusoidal", "learned")):
        torch.manual_seed(run.seed + k)
        model = _OrderModel(kind, cfg).to(run.device)
        opt = Adam(model.parameters(), lr=cfg.lr)
        hist = fit(
            model,
            (x_all[:n_tr], y_all[:n_tr]),
            loss_fn=cross_entropy,
            optimizer=opt,
            epochs=2 if run.quick else cfg.epochs,
            batch_size=64,
            val=(x_all[n_tr:], y_all[n_tr:]),
            seed=run.seed,
        )
        accs[kind] = hist.val_acc[-1]
        run.metric(f"test_acc_{kind}", accs[kind], key=kind == "sinusoidal")
        run.progress(0.3 + 0.23 * (k + 1), f"{kind} done")
    run.check(
        "without positional encoding the order task stays at chance",
        abs(accs["none"] - 0.5) <= 0.05,
        observed=accs["none"],
        expected="0.50 +- 0.05",
    )
    run.check_ge("with sinusoidal encoding it is solved", accs["sinusoidal"], 0.95)
    run.check_ge("with learned encoding it is solved", accs["learned"], 0.95)

    with run.figure(
        "encoding_matrix",
        alt="the sinusoidal positional-encoding matrix: 64 positions by 64 "
        "dimensions; frequency falls from left to right",
    ) as fig:
        ax = fig.subplots()
        im = ax.imshow(sinusoidal_encoding(64, 64).numpy(), cmap="RdBu", aspect="auto", vmin=-1, vmax=1)
        ax.set_xlabel("dimension")
        ax.set_ylabel("position")
        fig.colorbar(im, ax=ax)
