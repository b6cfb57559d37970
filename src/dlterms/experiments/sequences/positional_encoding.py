"""Positional encoding: (1) a transformer encoder without positional information is permutation-
equivariant: permuting the input tokens permutes its outputs the same way, checked in float64 to
1e-12 (rounding only); with sinusoidal encodings added it is not. (2) An order task: two marker tokens
A and B sit at random places among filler tokens; is A before B? Both labels have the same bag of
tokens, so a model without positions can do no better than chance (50 %); the same model with
sinusoidal or learned encodings solves it (>= 95 % test accuracy).
"""

from __future__ import annotations

import torch

from dlterms.losses import cross_entropy
from dlterms.nn import Embedding, Linear, TransformerEncoderLayer
from dlterms.nn.positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoidal_encoding
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import fit

T, V, D = 10, 12, 32  # sequence length, vocabulary (0 = A, 1 = B, 2.. = fillers), model width


class _OrderModel(torch.nn.Module):
    def __init__(self, pe: str):
        super().__init__()
        self.emb = Embedding(V, D)
        self.pe = {
            "none": torch.nn.Identity(),
            "sinusoidal": SinusoidalPositionalEncoding(D, max_len=T),
            "learned": LearnedPositionalEncoding(T, D, init_std=0.5),
        }[pe]
        self.block = TransformerEncoderLayer(D, 4, 64, dropout=0.0, batch_first=True)
        self.head = Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.pe(self.emb(x)))  # (B, T, D)
        return self.head(h.mean(1))  # order-blind pooling: all order information must come from the encoding


def _order_data(n: int, g: torch.Generator):
    x = torch.randint(2, V, (n, T), generator=g)
    pos = torch.stack([torch.randperm(T, generator=g)[:2] for _ in range(n)])  # distinct positions of A, B
    rows = torch.arange(n)
    x[rows, pos[:, 0]] = 0
    x[rows, pos[:, 1]] = 1
    return x, (pos[:, 0] < pos[:, 1]).long()


@experiment("positional-encoding")
def positional_encoding(run: Run) -> None:
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
    run.check(
        "with sinusoidal encodings the outputs are no longer a permutation",
        err_pe >= 1e-2,
        observed=round(err_pe, 4),
        expected=">= 1e-2",
    )

    # ---- 2. the order task
    n_tr, n_te = 3000, 1000
    x_all, y_all = _order_data(n_tr + n_te, g)
    accs = {}
    for k, kind in enumerate(("none", "sinusoidal", "learned")):
        torch.manual_seed(run.seed + k)
        model = _OrderModel(kind).to(run.device)
        opt = Adam(model.parameters(), lr=3e-3)
        hist = fit(
            model,
            (x_all[:n_tr], y_all[:n_tr]),
            loss_fn=cross_entropy,
            optimizer=opt,
            epochs=2 if run.quick else 5,
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
        observed=round(accs["none"], 4),
        expected="0.50 +- 0.05",
    )
    run.check(
        "with sinusoidal encoding it is solved",
        accs["sinusoidal"] >= 0.95,
        observed=round(accs["sinusoidal"], 4),
        expected=">= 0.95",
    )
    run.check(
        "with learned encoding it is solved",
        accs["learned"] >= 0.95,
        observed=round(accs["learned"], 4),
        expected=">= 0.95",
    )

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
