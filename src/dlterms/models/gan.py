r"""Generative adversarial network: generator, discriminator, losses and the alternating training loop.

Goodfellow et al. (2014), "Generative Adversarial Nets". A generator $G$ maps noise $z \sim p_z$
(standard normal) to samples $G(z)$; a discriminator $D$ outputs the logit $\ell(x)$ of the probability
$D(x) = \sigma(\ell(x))$ that $x$ is real. The game is

$$\min_G \max_D\ V(D, G) = \mathbb{E}_{x \sim p_\text{data}}[\log D(x)] + \mathbb{E}_{z}[\log(1 - D(G(z)))] .$$

The discriminator ascends $V$, i.e. minimises the binary cross-entropy with real = 1, fake = 0:

$$L_D = -\mathbb{E}_x[\log \sigma(\ell(x))] - \mathbb{E}_z[\log(1 - \sigma(\ell(G(z))))] .$$

Minimising $\mathbb{E}_z[\log(1 - D(G(z)))]$ for $G$ saturates when $D$ rejects the fakes confidently
(its gradient vanishes as $D(G(z)) \to 0$), so the paper's practical *non-saturating* loss is used:

$$L_G^\text{NS} = -\mathbb{E}_z[\log \sigma(\ell(G(z)))] , \qquad
L_G^\text{sat} = \mathbb{E}_z[\log(1 - \sigma(\ell(G(z))))] .$$

Both are written with $\log\sigma(u) = -\operatorname{softplus}(-u)$ and
$\log(1-\sigma(u)) = -\operatorname{softplus}(u)$, which are exact and stable for any logit.
Training alternates one (or `d_steps`) discriminator steps on a fresh real batch and a fresh fake
batch (with $G$ fixed) with one generator step.

An optional R1 penalty (Mescheder et al., 2018, "Which training methods for GANs do actually
converge?") adds $\frac{\gamma}{2}\mathbb{E}_x \lVert \nabla_x \ell(x) \rVert^2$ to $L_D$ on real data, which damps
the oscillation of simultaneous gradient play around the equilibrium.

Packing (Lin et al., 2018, "PacGAN") is one remedy for mode collapse: the discriminator judges
`pack` samples at once (concatenated), all real or all fake, so a generator that puts every sample
in one mode is easy to spot. `pack=1` is the ordinary GAN. Inputs are (batch, features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from dlterms.nn.linear import MLP

__all__ = ["Generator", "Discriminator", "discriminator_loss", "generator_loss", "train_gan", "GANHistory"]


class Generator(torch.nn.Module):
    """G: z (B, latent_dim) -> x (B, out_features), an MLP."""

    def __init__(
        self, latent_dim: int = 2, out_features: int = 2, hidden: tuple[int, ...] = (128, 128), activation="relu"
    ):
        super().__init__()
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        self.latent_dim, self.out_features = latent_dim, out_features
        self.net = MLP([latent_dim, *hidden, out_features], activation=activation)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples G(z), z ~ N(0, I)."""
        dev = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(dev)
        return self(z)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, out_features={self.out_features}"


class Discriminator(torch.nn.Module):
    """D: x (B, in_features) -> logit (B,), an MLP; with pack = m it sees m samples at a time and
    returns one logit per pack, (B / m,)."""

    def __init__(
        self, in_features: int = 2, hidden: tuple[int, ...] = (128, 128), activation="leaky_relu", pack: int = 1
    ):
        super().__init__()
        if not isinstance(pack, int) or pack < 1:
            raise ValueError(f"pack must be a positive integer, got {pack!r}")
        self.in_features, self.pack = in_features, pack
        self.net = MLP([in_features * pack, *hidden, 1], activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        if B % self.pack:
            raise ValueError(f"batch size {B} must be a multiple of pack={self.pack}")
        x = x.reshape(B // self.pack, self.pack * self.in_features)  # (B/m, m*d): m samples side by side
        return self.net(x).squeeze(-1)  # (B/m,)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, pack={self.pack}"


def _log_sigmoid(u: Tensor) -> Tensor:
    return -torch.nn.functional.softplus(-u)  # log sigma(u)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """L_D = -E[log sigma(l(x))] - E[log(1 - sigma(l(G(z))))]."""
    # log(1 - sigma(u)) = log sigma(-u)
    return -_log_sigmoid(real_logits).mean() - _log_sigmoid(-fake_logits).mean()


def generator_loss(fake_logits: Tensor, kind: str = "non-saturating") -> Tensor:
    """L_G: "non-saturating" -E[log sigma(l(G(z)))], or "saturating" E[log(1 - sigma(l(G(z))))]."""
    if kind == "non-saturating":
        return -_log_sigmoid(fake_logits).mean()
    if kind == "saturating":
        return _log_sigmoid(-fake_logits).mean()
    raise ValueError(f"kind must be 'non-saturating' or 'saturating', got {kind!r}")


@dataclass
class GANHistory:
    d_loss: list[float] = field(default_factory=list)  # per generator step
    g_loss: list[float] = field(default_factory=list)
    steps: int = 0


def train_gan(
    G: Generator,
    D: Discriminator,
    sample_real: Callable[[int], Tensor],
    *,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    d_lr: float | None = None,
    betas=(0.5, 0.999),
    d_steps: int = 1,
    loss: str = "non-saturating",
    final_lr_fraction: float = 1.0,
    r1_gamma: float = 0.0,
    generator: torch.Generator | None = None,
    optimizer_cls=None,
    callback: Callable[[int, GANHistory], None] | None = None,
) -> GANHistory:
    """The alternating GAN loop (Goodfellow et al., 2014, Algorithm 1) with Adam.

    Args:
        sample_real: n -> a batch of n real samples (on the models' device).
        steps: generator updates; each follows `d_steps` discriminator updates.
        lr, d_lr: learning rates of G and D (d_lr defaults to lr).
        loss: the generator's loss, "non-saturating" or "saturating".
        final_lr_fraction: both learning rates decay linearly to this fraction of their start by the
            last step (1.0: constant); a smaller step at the end sharpens the samples around the modes.
        r1_gamma: weight of the R1 penalty (gamma / 2) E_x ||grad_x l(x)||^2 on real data (0: off).
        generator: torch.Generator for the noise z.
        optimizer_cls: optimiser class with Adam's signature (default dlterms.optim.Adam).
        callback: called as callback(step, history) every 100 generator steps.

    Each generator step computes the gradients of G's parameters only (D's would be thrown away
    before its next step anyway); G's gradients are the same, bit for bit, as with a full backward.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if d_steps < 1:
        raise ValueError(f"d_steps must be >= 1, got {d_steps}")
    if batch_size % D.pack:
        raise ValueError(f"batch_size={batch_size} must be a multiple of the discriminator's pack={D.pack}")
    if not r1_gamma >= 0:
        raise ValueError(f"r1_gamma must be >= 0, got {r1_gamma}")
    if not 0 < final_lr_fraction <= 1:
        raise ValueError(f"final_lr_fraction must be in (0, 1], got {final_lr_fraction}")
    generator_loss(torch.zeros(1), loss)  # validate `loss` before training
    if optimizer_cls is None:
        from dlterms.optim import Adam as optimizer_cls  # noqa: N813 - a class
    g_params = list(G.parameters())
    opt_g = optimizer_cls(g_params, lr=lr, betas=betas)
    opt_d = optimizer_cls(D.parameters(), lr=d_lr if d_lr is not None else lr, betas=betas)
    hist = GANHistory()
    starts = [(g, g["lr"]) for opt in (opt_g, opt_d) for g in opt.param_groups]
    for step in range(steps):
        frac = 1 - (1 - final_lr_fraction) * step / max(steps - 1, 1)  # linear decay of the step size
        for group, lr0 in starts:
            group["lr"] = lr0 * frac
        # --- discriminator: minimise L_D with G fixed
        for _ in range(d_steps):
            real = sample_real(batch_size)
            with torch.no_grad():
                fake = G.sample(batch_size, generator)
            opt_d.zero_grad(set_to_none=True)
            if r1_gamma > 0:
                real.requires_grad_(True)
            real_logits = D(real)
            ld = discriminator_loss(real_logits, D(fake))
            if r1_gamma > 0:
                # R1 = (gamma / 2) E_x ||d l(x) / dx||^2 (Mescheder et al., 2018)
                (grad_x,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
                ld = ld + r1_gamma / 2 * grad_x.pow(2).sum(dim=1).mean()
            ld.backward()
            opt_d.step()
        # --- generator: minimise L_G through D (only G's gradients are computed)
        lg = generator_loss(D(G.sample(batch_size, generator)), loss)
        for p, g in zip(g_params, torch.autograd.grad(lg, g_params), strict=True):
            p.grad = g
        opt_g.step()
        hist.d_loss.append(float(ld.detach()))
        hist.g_loss.append(float(lg.detach()))
        hist.steps = step + 1
        if callback is not None and (step + 1) % 100 == 0:
            callback(step + 1, hist)
    return hist
