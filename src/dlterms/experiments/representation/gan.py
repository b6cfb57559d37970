"""GAN: a generator learns a ring of 8 Gaussians (std 0.05, radius 2); mode collapse and one remedy.

Quality and coverage follow Srivastava et al. (2017, VEEGAN): a sample is "high quality" when it lies
within 3 std of its nearest mode; a mode is covered when it holds >= 1 % of the 1000 samples.
Claims (TERMS.md): on each of two seeds, >= 80 % of samples are high quality and >= 6 of 8 modes are
covered (non-saturating loss, MLPs 256-256, Adam 1e-3 decaying to 2e-4, 2000 steps of batch 128).
Mode collapse: when the discriminator learns 10x slower than the generator (lr 1e-4 vs 1e-3) the
generator parks every sample near one mode (we check that at most 2 modes hold >= 1 % of the samples,
counted by nearest mode at any distance). Remedy: packing (PacGAN, the discriminator judges 4 samples
at once) with the same learning rates spreads the samples over >= 6 modes.

Metrics of the two main runs are named `..._run1` (trained from run.seed) and `..._run2` (run.seed + 1).
"""

from __future__ import annotations

import torch

from dlterms.data.toy import assign_to_modes, ring_centers, ring_of_gaussians
from dlterms.models.gan import Discriminator, Generator, train_gan
from dlterms.run import Run, experiment

N_MODES, STD, N_SAMPLES = 8, 0.05, 1000


def _train(run: Run, seed: int, *, hidden, steps, lr, d_lr=None, pack=1, final_lr_fraction=1.0, progress=(0.0, 1.0)):
    torch.manual_seed(seed)
    G = Generator(2, 2, hidden).to(run.device)
    D = Discriminator(2, hidden, pack=pack).to(run.device)
    data_gen, noise_gen = torch.Generator().manual_seed(seed * 10 + 1), torch.Generator().manual_seed(seed * 10 + 2)
    lo, hi = progress

    def sample_real(n):
        return ring_of_gaussians(n, N_MODES, std=STD, generator=data_gen)[0].to(run.device)

    hist = train_gan(
        G,
        D,
        sample_real,
        steps=steps,
        batch_size=128,
        lr=lr,
        d_lr=d_lr,
        final_lr_fraction=final_lr_fraction,
        generator=noise_gen,
        callback=lambda s, h: run.progress(lo + (hi - lo) * s / steps, f"GAN step {s}"),
    )
    with torch.no_grad():
        x = G.sample(N_SAMPLES, torch.Generator().manual_seed(seed * 10 + 3)).cpu()
    k, ok = assign_to_modes(x, N_MODES, std=STD)
    return x, k, ok, hist


@experiment("gan")
def gan(run: Run) -> None:
    steps = 200 if run.quick else 2000
    good = {}
    for i, seed in enumerate((run.seed, run.seed + 1)):
        x, k, ok, hist = _train(
            run,
            seed,
            hidden=(256, 256),
            steps=steps,
            lr=1e-3,
            final_lr_fraction=0.2,
            progress=(0.35 * i, 0.35 * (i + 1)),
        )
        quality = float(ok.float().mean())
        per_mode = torch.bincount(k[ok], minlength=N_MODES)  # high-quality samples per mode
        covered = int((per_mode >= 0.01 * N_SAMPLES).sum())
        good[seed] = (x, k, ok, per_mode, hist)
        # named by run (1: run.seed, 2: run.seed + 1), not by seed, so results of several seeds line up
        run.metric(f"high_quality_fraction_run{i + 1}", quality, key=(i == 0))
        run.metric(f"modes_covered_run{i + 1}", covered)
        run.metric(f"samples_per_mode_run{i + 1}", per_mode.tolist())
        run.check(
            f"seed {seed}: >= 80 % of 1000 samples within 3 std of a mode",
            quality >= 0.8,
            observed=round(quality, 3),
            expected=">= 0.80",
        )
        run.check(
            f"seed {seed}: >= 6 of 8 modes each hold >= 1 % of the samples",
            covered >= 6,
            observed=covered,
            expected=">= 6",
        )

    csteps = 100 if run.quick else 500
    cases = {}
    for j, (name, pack) in enumerate((("collapse", 1), ("packed", 4))):
        x, k, ok, _ = _train(
            run,
            run.seed,
            hidden=(128, 128),
            steps=csteps,
            lr=1e-3,
            d_lr=1e-4,
            pack=pack,
            progress=(0.7 + 0.15 * j, 0.85 + 0.15 * j),
        )
        near = torch.bincount(k, minlength=N_MODES)  # samples per nearest mode, any distance
        cases[name] = (x, near)
        run.metric(f"{name}_samples_per_nearest_mode", near.tolist())
        run.metric(f"{name}_modes_with_1pct", int((near >= 0.01 * N_SAMPLES).sum()))
    n_collapse = int((cases["collapse"][1] >= 10).sum())
    n_packed = int((cases["packed"][1] >= 10).sum())
    run.check(
        "mode collapse: with D 10x slower than G, at most 2 modes hold >= 1 % of the samples",
        n_collapse <= 2,
        observed=n_collapse,
        expected="<= 2",
    )
    run.check(
        "remedy: packing 4 samples per discriminator input spreads them over >= 6 modes",
        n_packed >= 6,
        observed=n_packed,
        expected=">= 6",
    )

    centers = ring_centers(N_MODES)
    real = ring_of_gaussians(N_SAMPLES, N_MODES, std=STD, generator=run.generator(7))[0]
    with run.figure(
        "samples",
        alt="GAN samples over the ring of 8 Gaussians with per-mode histograms for "
        "two seeds, and the collapsed and packed runs",
        figsize=(13, 6.5),
    ) as fig:
        axes = fig.subplots(2, 4)
        for col, seed in enumerate(good):
            x, k, ok, per_mode, _ = good[seed]
            ax = axes[0, col]
            ax.scatter(real[:, 0], real[:, 1], s=2, c="lightgray", label="data")
            ax.scatter(x[ok, 0], x[ok, 1], s=2, c="tab:blue", label="within 3 std")
            ax.scatter(x[~ok, 0], x[~ok, 1], s=2, c="tab:red", label="off-mode")
            ax.set(
                title=f"seed {seed}: {float(ok.float().mean()):.0%} high quality",
                aspect="equal",
                xlim=(-3, 3),
                ylim=(-3, 3),
            )
            ax.legend(fontsize=6, loc="center")
            axes[1, col].bar(range(N_MODES), per_mode.tolist())
            axes[1, col].axhline(10, c="k", ls="--", lw=0.8, label="1 %")
            axes[1, col].set(xlabel="mode", ylabel="high-quality samples", title=f"seed {seed} per mode")
        for col, name in enumerate(("collapse", "packed"), start=2):
            x, near = cases[name]
            ax = axes[0, col]
            ax.scatter(real[:, 0], real[:, 1], s=2, c="lightgray")
            ax.scatter(x[:, 0], x[:, 1], s=2, c="tab:purple")
            ax.scatter(centers[:, 0], centers[:, 1], marker="x", c="k", s=20)
            title = "collapse: D lr 1e-4, G lr 1e-3" if name == "collapse" else "same, D packs 4 samples"
            ax.set(title=title, aspect="equal", xlim=(-3, 3), ylim=(-3, 3))
            axes[1, col].bar(range(N_MODES), near.tolist(), color="tab:purple")
            axes[1, col].set(xlabel="nearest mode", ylabel="samples", title=f"{name}: samples per nearest mode")
