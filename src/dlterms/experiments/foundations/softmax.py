r"""Softmax: `dlterms.nn.softmax` (shifted by the maximum) checked on its defining properties.

On 2000 random rows of 10 logits (float32, scale 5) the outputs must sum to 1, be unchanged when a
constant is added to every logit (tested in float64, because in float32 adding 1000 already rounds the
logits themselves by up to 3e-5), and match `torch.softmax` (all to 1e-6, the spec); log-softmax is
compared as well. With logits around 1000 the textbook formula $e^{z_i} / \sum_j e^{z_j}$ overflows
($e^{1000} = \infty$ in float32 and float64, $\infty/\infty$ = NaN) while the shifted one is finite and
still equals torch. The figure sweeps the logit scale to show where the naive formula breaks
($e^{z}$ overflows float32 above $z \approx 88.7$) and how a temperature sharpens or flattens the output.

Thresholds: docs/experiments.md#softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.nn import log_softmax, softmax
from dlterms.run import Run, experiment

TOL = 1e-6  # the spec's tolerance of the properties


@dataclass(frozen=True)
class Config:
    """Parameters of the softmax experiment; the defaults are the recorded run."""

    rows: int = 2000  # random logit vectors
    classes: int = 10  # logits per vector
    scale: float = 5.0  # std of the random logits
    shifts: tuple[float, ...] = (-50.0, 3.0, 1000.0)  # constants added to every logit (tested in float64)

    def __post_init__(self) -> None:
        if self.rows < 1 or self.classes < 2:
            raise ValueError(f"rows must be >= 1 and classes >= 2, got {self.rows!r} and {self.classes!r}")
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale!r}")
        if not self.shifts:
            raise ValueError(f"shifts must not be empty, got {self.shifts!r}")


def naive_softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The textbook formula without the max shift, kept only to show it overflowing."""
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)


@experiment("softmax", config=Config)
def softmax_experiment(run: Run, cfg: Config) -> None:
    z = torch.randn(cfg.rows, cfg.classes, generator=run.generator(0)) * cfg.scale
    p = softmax(z, dim=-1)

    sum_err = (p.sum(-1) - 1).abs().max().item()
    # In float64: in float32, z + 1000 itself is rounded to multiples of 6e-5, which changes the input.
    z64 = z.double()
    shift_err = max((softmax(z64 + c, dim=-1) - softmax(z64, dim=-1)).abs().max().item() for c in cfg.shifts)
    torch_err = (p - torch.softmax(z, dim=-1)).abs().max().item()
    log_err = (log_softmax(z, dim=-1) - torch.log_softmax(z, dim=-1)).abs().max().item()
    run.metric("max_abs_sum_minus_1", sum_err)
    run.metric("max_abs_change_under_shift", shift_err)
    run.metric("max_abs_diff_vs_torch", torch_err, key=True)
    run.metric("max_abs_diff_log_softmax_vs_torch", log_err)
    run.check_le("outputs sum to 1", sum_err, TOL, strict=True)
    run.check_le("adding a constant to every logit changes nothing", shift_err, TOL, strict=True)
    run.check_le("matches torch.softmax", torch_err, TOL, strict=True)
    # log-probabilities reach about -70, so the absolute tolerance of log-softmax is 10x wider
    run.check_le("log-softmax matches torch.log_softmax", log_err, 1e-5, strict=True)

    big = torch.tensor([[1000.0, 999.0, 998.0], [1000.0, 0.0, -1000.0]])
    naive_nan = bool(torch.isnan(naive_softmax(big)).any())
    naive64_nan = bool(torch.isnan(naive_softmax(big.double())).any())
    ours = softmax(big)
    ours_finite = bool(torch.isfinite(ours).all())
    big_err = (ours - torch.softmax(big, -1)).abs().max().item()
    run.metric("softmax_of_1000_999_998", ours[0].tolist())
    run.check(
        "logits of 1000: the naive formula gives NaN (float32 and float64)",
        naive_nan and naive64_nan,
        observed=f"NaN: float32 {naive_nan}, float64 {naive64_nan}",
        expected="NaN in both",
    )
    run.check(
        "logits of 1000: ours is finite and matches torch",
        ours_finite and big_err < TOL,
        observed=f"finite {ours_finite}, diff {big_err:.1e}",
        expected=f"finite, < {TOL:g}",
    )

    with run.figure(
        "stability-and-temperature",
        alt="left: largest probability for logits s*(1, 0.998, 0) as s "
        "grows; the naive formula turns to NaN above about 88 in float32; right: softmax of the same "
        "logits at three temperatures",
        figsize=(10, 3.8),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        scales = np.logspace(0, 3.3, 200)
        base = torch.tensor([1.0, 0.998, 0.0])  # two close logits: the answer keeps changing up to s = 2000
        zs = torch.tensor(scales, dtype=torch.float32)[:, None] * base  # (200, 3)
        naive = naive_softmax(zs)[:, 0].numpy()
        ax1.semilogx(scales, softmax(zs)[:, 0], lw=3, color="tab:blue", label="ours (max subtracted)")
        ax1.semilogx(scales, naive, lw=1.5, ls="--", color="tab:red", label=r"naive $e^{z}/\sum e^{z}$")
        bad = np.isnan(naive)
        ax1.scatter(scales[bad], np.full(bad.sum(), 0.3), marker="x", s=10, color="tab:red", label="naive: NaN")
        ax1.axvline(88.72, color="grey", lw=0.8)
        ax1.text(95, 0.75, "exp overflows\nfloat32", fontsize=8, color="grey")
        ax1.set_ylim(0.25, 1.0)
        ax1.set_xlabel("logit scale s for z = s (1, 0.998, 0)")
        ax1.set_ylabel("largest probability")
        ax1.legend(fontsize=8, loc="upper left")
        logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
        width = 0.25
        for k, temp in enumerate((0.5, 1.0, 2.0)):
            ax2.bar(np.arange(5) + (k - 1) * width, softmax(logits / temp), width, label=f"T = {temp:g}")
        ax2.set_xticks(range(5), [f"z={v:g}" for v in logits.tolist()])
        ax2.set_ylabel("softmax(z / T)")
        ax2.set_title("temperature: T < 1 sharpens, T > 1 flattens", fontsize=10)
        ax2.legend(fontsize=8)
