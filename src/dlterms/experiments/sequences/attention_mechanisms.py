"""Attention mechanisms (multi-head, masked): (1) our MultiheadAttention with weights copied from
torch.nn.MultiheadAttention gives the same outputs and per-head weights (1e-5) with causal and padding
masks; (2) heads specialise on a task needing two kinds of lookup: predict
y_t = (x_{t-1} - x_0) mod K at every step t >= 1 of a causally masked sequence, a relative lookup
(the previous token) and an absolute one (the first token). After training one 2-head layer, we measure
each head's attention mass on position t-1 and on position 0 (for t >= 2, where the two differ) and the
heads' diversity (mean pairwise Jensen-Shannon divergence of their attention rows, in bits, 0 = identical);
(3) the causal mask blocks the future: changing later tokens leaves earlier outputs bit for bit equal.

Why the task forces specialisation: the target is not symmetric in the two tokens, so a head that
spreads its weight evenly over both positions (an average of the two values, the same for (a, b) as
for (b, a)) cannot serve; and with two heads for two lookups there is no spare head to share a role.
An earlier version used (x_{t-1} + x_0) mod K with 4 heads and learned positions: a sum is symmetric,
so one head averaging the two positions solves it, and at seeds 1 and 2 the roles ended up spread over
heads (0.49 and 0.51 of one head's weight on each). Positions are sinusoidal with base 3 rather than
10,000: over 12 positions and 48 dimensions, base 10,000 leaves most frequencies so low that
neighbouring positions look alike (a previous-token head then also weighs the current token by about
0.2-0.3); base 3 gives periods of 6 to 19 steps, all of which tell neighbours apart over the sequence.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from dlterms.losses import cross_entropy
from dlterms.nn import MLP, Embedding, MultiheadAttention
from dlterms.nn.positional import SinusoidalPositionalEncoding
from dlterms.optim import Adam, CosineAnnealingLR
from dlterms.run import Run, experiment
from dlterms.training import fit

H_REF = 4  # heads in the comparison with torch


@dataclass(frozen=True)
class Config:
    """Parameters of the attention-mechanisms experiment; the defaults are the recorded run."""

    length: int = 12  # tokens per sequence of the two-lookup task
    values: int = 7  # token values K (targets are mod K)
    d_model: int = 48  # width of the task model
    heads: int = 2  # attention heads of the task model (two lookups, two heads)
    pos_base: float = 3.0  # base of the sinusoidal positions (see the docstring; 10,000 is the usual one)
    n_train: int = 6000  # training sequences
    n_test: int = 1000  # test sequences
    epochs: int = 12  # training epochs (cosine-annealed)
    lr: float = 3e-3  # Adam peak step size

    def __post_init__(self) -> None:
        if self.length < 4:
            raise ValueError(f"length must be >= 4, got {self.length!r}")
        if self.values < 2:
            raise ValueError(f"values must be >= 2, got {self.values!r}")
        if self.heads < 2 or self.d_model % self.heads or self.d_model % 2:
            raise ValueError(f"heads must be >= 2 and divide d_model={self.d_model!r} (even), got {self.heads!r}")
        if self.pos_base <= 1:
            raise ValueError(f"pos_base must be > 1, got {self.pos_base!r}")
        if self.n_train < 1 or self.n_test < 1 or self.epochs < 1:
            raise ValueError(
                f"n_train, n_test and epochs must be >= 1, got {self.n_train!r}, {self.n_test!r}, {self.epochs!r}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


class _TwoLookups(torch.nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        D, K = cfg.d_model, cfg.values
        self.emb = Embedding(K, D)
        self.pos = SinusoidalPositionalEncoding(D, max_len=cfg.length, base=cfg.pos_base)
        self.attn = MultiheadAttention(D, cfg.heads, batch_first=True)
        self.mlp = MLP([D, 96, K])

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        h = self.pos(self.emb(x))  # (B, T, D)
        a, w = self.attn(h, h, h, is_causal=True, average_attn_weights=False)  # w: (B, H, T, T)
        out = self.mlp(h + a)  # (B, T, K)
        return (out, w) if return_weights else out


def _loss(out, y):
    return cross_entropy(out[:, 1:].reshape(-1, out.shape[-1]), y[:, 1:].reshape(-1))


def _js_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    m = 0.5 * (p + q)

    def kl(a, b):
        return (a * (a.clamp_min(1e-12) / b.clamp_min(1e-12)).log2()).sum(-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@experiment("attention-mechanisms", config=Config)
def attention_mechanisms(run: Run, cfg: Config) -> None:
    T, K, D, H = cfg.length, cfg.values, cfg.d_model, cfg.heads
    torch.manual_seed(run.seed)
    g = run.generator(1)
    # ---- 1. against torch.nn.MultiheadAttention with copied weights
    ref = torch.nn.MultiheadAttention(D, H_REF, batch_first=True)
    ours = MultiheadAttention(D, H_REF, batch_first=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, T, D, generator=g)
    kpm = torch.zeros(3, T, dtype=torch.bool)
    kpm[1, -3:] = True
    cm = torch.ones(T, T, dtype=torch.bool).triu(1)
    with torch.no_grad():
        yo, wo = ours(x, x, x, key_padding_mask=kpm, attn_mask=cm, average_attn_weights=False)
        yr, wr = ref(x, x, x, key_padding_mask=kpm, attn_mask=cm, average_attn_weights=False)
    diff = max(float((yo - yr).abs().max()), float((wo - wr).abs().max()))
    run.metric("max_abs_diff_vs_torch_mha", diff)
    run.check_le(
        "MultiheadAttention equals torch's with copied weights (causal + padding masks, per-head weights)", diff, 1e-5
    )

    # ---- 2. two kinds of lookup
    n_tr, n_te = cfg.n_train, cfg.n_test
    xs = torch.randint(K, (n_tr + n_te, T), generator=g)
    ys = (torch.roll(xs, 1, dims=1) - xs[:, :1]) % K  # y_t = (x_{t-1} - x_0) mod K; y_0 unused
    model = _TwoLookups(cfg).to(run.device)
    epochs = 2 if run.quick else cfg.epochs
    opt = Adam(model.parameters(), lr=cfg.lr)
    sched = CosineAnnealingLR(opt, T_max=epochs)
    fit(
        model,
        (xs[:n_tr], ys[:n_tr]),
        loss_fn=_loss,
        optimizer=opt,
        epochs=epochs,
        batch_size=64,
        seed=run.seed,
        scheduler=sched,
    )
    model.eval()
    with torch.no_grad():
        out, w = model(xs[n_tr:].to(run.device), return_weights=True)
    w = w.cpu()
    acc = float((out.argmax(-1).cpu()[:, 1:] == ys[n_tr:, 1:]).float().mean())
    run.metric("test_acc", acc, key=True)
    run.check_ge("the two-lookup task is learned", acc, 0.95)
    t = torch.arange(2, T)
    prev_mass = w[:, :, t, t - 1].mean((0, 2))  # (H,) mass on position t-1
    first_mass = w[:, :, t, 0].mean((0, 2))  # (H,) mass on position 0
    run.metric("head_mass_on_previous", [float(v) for v in prev_mass])
    run.metric("head_mass_on_first", [float(v) for v in first_mass])
    h_prev, h_first = int(prev_mass.argmax()), int(first_mass.argmax())
    rows = w[:, :, 2:]  # (B, H, T-2, T)
    div = float(
        torch.stack([_js_bits(rows[:, i], rows[:, j]).mean() for i, j in itertools.combinations(range(H), 2)]).mean()
    )
    run.metric("head_diversity_js_bits", div)
    run.check(
        "one head specialises on the previous token and another on the first token",
        h_prev != h_first and prev_mass[h_prev] >= 0.7 and first_mass[h_first] >= 0.7,
        observed=f"head {h_prev}: {float(prev_mass[h_prev]):.2f} on t-1; head {h_first}: "
        f"{float(first_mass[h_first]):.2f} on 0",
        expected="two different heads, each >= 0.70",
    )
    run.check("heads differ from each other", div >= 0.3, observed=div, expected=">= 0.3 bits (max 1)")

    # ---- 3. the causal mask blocks the future
    x0 = xs[n_tr : n_tr + 200].to(run.device)
    x1 = x0.clone()
    x1[:, T // 2 :] = (x1[:, T // 2 :] + 1) % K  # change every token from T/2 on
    with torch.no_grad():
        o0, w0 = model(x0, return_weights=True)
        o1 = model(x1)
    past = float((o0[:, : T // 2] - o1[:, : T // 2]).abs().max())
    future_w = float(w0.triu(1).abs().max())
    changed = float((o0[:, T // 2 :] - o1[:, T // 2 :]).abs().max())
    run.metric("past_output_change", past)
    run.metric("attention_on_future", future_w)
    run.check(
        "changing future tokens leaves every earlier output unchanged",
        past == 0.0 and changed > 0,
        observed=past,
        expected=f"exactly 0 (later outputs changed by up to {changed:.2f})",
    )
    run.check(
        "attention weights on future positions are exactly zero", future_w == 0.0, observed=future_w, expected="0"
    )

    with run.figure(
        "attention_heads",
        alt=f"attention maps of the {'two' if H == 2 else H} heads on one test sequence: one head "
        "looks at the previous token, another at the first",
        figsize=(5.6, 2.8),
    ) as fig:
        axes = fig.subplots(1, H)
        for i, ax in enumerate(axes):
            ax.imshow(w[0, i].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"head {i}")
            ax.set_xlabel("key position")
            if i == 0:
                ax.set_ylabel("query position")
