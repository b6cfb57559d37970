"""Attention mechanisms (multi-head, masked): (1) our MultiheadAttention with weights copied from
torch.nn.MultiheadAttention gives the same outputs and per-head weights (1e-5) with causal and padding
masks; (2) heads specialise on a task needing two kinds of lookup: predict
y_t = (x_{t-1} + x_0) mod K at every step t >= 1 of a causally masked sequence, a relative lookup
(the previous token) and an absolute one (the first token). After training one 4-head layer, we measure
each head's attention mass on position t-1 and on position 0 (for t >= 2, where the two differ) and the
heads' diversity (mean pairwise Jensen-Shannon divergence of their attention rows, in bits, 0 = identical);
(3) the causal mask blocks the future: changing later tokens leaves earlier outputs bit for bit equal.
"""

from __future__ import annotations

import itertools

import torch

from dlterms.losses import cross_entropy
from dlterms.nn import MLP, Embedding, MultiheadAttention
from dlterms.nn.positional import LearnedPositionalEncoding
from dlterms.optim import Adam, CosineAnnealingLR
from dlterms.run import Run, experiment
from dlterms.training import fit

T, K, D, H = 12, 7, 48, 4  # length, token values, width, heads


class _TwoLookups(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = Embedding(K, D)
        self.pos = LearnedPositionalEncoding(T, D, init_std=0.5)
        self.attn = MultiheadAttention(D, H, batch_first=True)
        self.mlp = MLP([D, 96, K])

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        h = self.pos(self.emb(x))  # (B, T, D)
        a, w = self.attn(h, h, h, is_causal=True, average_attn_weights=False)  # w: (B, H, T, T)
        out = self.mlp(h + a)  # (B, T, K)
        return (out, w) if return_weights else out


def _loss(out, y):
    return cross_entropy(out[:, 1:].reshape(-1, K), y[:, 1:].reshape(-1))


def _js_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    m = 0.5 * (p + q)

    def kl(a, b):
        return (a * (a.clamp_min(1e-12) / b.clamp_min(1e-12)).log2()).sum(-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@experiment("attention-mechanisms")
def attention_mechanisms(run: Run) -> None:
    torch.manual_seed(run.seed)
    g = run.generator(1)
    # ---- 1. against torch.nn.MultiheadAttention with copied weights
    ref = torch.nn.MultiheadAttention(D, H, batch_first=True)
    ours = MultiheadAttention(D, H, batch_first=True)
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
    run.check(
        "MultiheadAttention equals torch's with copied weights (causal + padding masks, per-head weights)",
        diff <= 1e-5,
        observed=diff,
        expected="<= 1e-5",
    )

    # ---- 2. two kinds of lookup
    n_tr, n_te = 6000, 1000
    xs = torch.randint(K, (n_tr + n_te, T), generator=g)
    ys = (torch.roll(xs, 1, dims=1) + xs[:, :1]) % K  # y_t = (x_{t-1} + x_0) mod K; y_0 unused
    model = _TwoLookups().to(run.device)
    epochs = 2 if run.quick else 12
    opt = Adam(model.parameters(), lr=3e-3)
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
    run.check("the two-lookup task is learned", acc >= 0.95, observed=round(acc, 4), expected=">= 0.95")
    t = torch.arange(2, T)
    prev_mass = w[:, :, t, t - 1].mean((0, 2))  # (H,) mass on position t-1
    first_mass = w[:, :, t, 0].mean((0, 2))  # (H,) mass on position 0
    run.metric("head_mass_on_previous", [round(float(v), 3) for v in prev_mass])
    run.metric("head_mass_on_first", [round(float(v), 3) for v in first_mass])
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
    run.check("heads differ from each other", div >= 0.3, observed=round(div, 3), expected=">= 0.3 bits (max 1)")

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
        alt="attention maps of the four heads on one test sequence: one head "
        "looks at the previous token, another at the first",
        figsize=(9.6, 2.8),
    ) as fig:
        axes = fig.subplots(1, H)
        for i, ax in enumerate(axes):
            ax.imshow(w[0, i].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"head {i}")
            ax.set_xlabel("key position")
            if i == 0:
                ax.set_ylabel("query position")
