"""Quantization: post-training int8 quantization of a trained MLP, ours beside PyTorch's.

An MLP (64-256-256-10) is trained on scikit-learn's digits in float32. Post-training dynamic
quantization (int8 symmetric weights, per output channel or per tensor; uint8 inputs quantized per
batch) then replaces every Linear, with no retraining. Measured on the test set: accuracy, stored size
(parameters and buffers in bytes) and inference time (the whole test set, best of 20 repeats), for
the float model, ours (per channel and per tensor) and `torch.ao.quantization.quantize_dynamic`.
Ours computes the integer product in float32 arithmetic (exact, see the module), so its time shows
the cost of the simulation, not an int8 kernel; PyTorch's runs real int8 kernels.

Claims: size falls about 4x (>= 3.5x; scales, zero-points and float biases keep it under 4x) with at
most 1 point of accuracy lost. A sweep of weight bit-widths (8 down to 2, activations at 8 bits)
shows the output error growing as bits fall; on a task as easy as digits, accuracy holds down to a
few bits per channel (per tensor it breaks first), which is reported rather than assumed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.experiments.paradigms._common import best_forward_seconds
from dlterms.losses import cross_entropy
from dlterms.methods.quantization import model_size_bytes, quantize_dynamic
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the quantization experiment; the defaults are the recorded run."""

    sizes: tuple[int, ...] = (64, 256, 256, 10)  # MLP layer sizes
    epochs: int = 30  # float training epochs
    lr: float = 1e-3  # Adam step size
    bit_widths: tuple[int, ...] = (8, 6, 5, 4, 3, 2)  # weight bits of the in-run sweep (figure, error check)
    bits: int = 4  # weight bits of the low-bit model whose accuracy is reported as acc_low_bit
    per_channel: bool = True  # that low-bit model's scales: one per output channel (False: one per tensor)
    repeats: int = 20  # timing repeats (best taken)

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or self.sizes[0] != 64 or self.sizes[-1] != 10:
            raise ValueError(f"sizes must start at 64 (the digits' pixels) and end at 10, got {self.sizes!r}")
        if not self.bit_widths or not all(2 <= b <= 8 for b in self.bit_widths):
            raise ValueError(f"bit_widths must be in 2..8, got {self.bit_widths!r}")
        if not 2 <= self.bits <= 8:
            raise ValueError(f"bits must be in 2..8, got {self.bits!r}")
        if self.epochs < 1 or self.repeats < 1:
            raise ValueError(f"epochs and repeats must be >= 1, got {self.epochs!r} and {self.repeats!r}")


@experiment(
    "quantization",
    config=Config,
    sweeps=(
        Sweep(
            "bits",
            (8, 4, 3, 2),
            "How much test accuracy is left as the weights get fewer bits, with one scale per output channel "
            "and with one per tensor?",
            by="per_channel",
            by_values=(True, False),
            metric="acc_low_bit",
        ),
    ),
)
def quantization(run: Run, cfg: Config) -> None:
    data = digits(test_size=0.3, seed=run.seed)
    torch.manual_seed(run.seed)
    model = MLP(list(cfg.sizes))
    fit(
        model,
        (data.x_train, data.y_train),
        loss_fn=cross_entropy,
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=64,
        seed=run.seed,
    )
    model.eval()
    xt, yt = data.x_test, data.y_test
    acc_f = accuracy(model, xt, yt)
    q_pc = quantize_dynamic(model, bits=8, per_channel=True)
    q_pt = quantize_dynamic(model, bits=8, per_channel=False)
    acc_pc, acc_pt = accuracy(q_pc, xt, yt), accuracy(q_pt, xt, yt)
    # the reference: the same weights in torch.nn layers, quantized by PyTorch
    layers = []
    for i, (a, b) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(cfg.sizes) - 2 else [])
    ref_float = torch.nn.Sequential(*layers)
    ref_float.load_state_dict(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        from torch.ao.quantization import quantize_dynamic as torch_quantize_dynamic

        ref_q = torch_quantize_dynamic(ref_float, {torch.nn.Linear}, dtype=torch.qint8)
        acc_ref = accuracy(ref_q, xt, yt)
        size_ref = sum(
            m.weight().int_repr().numel() + 8 + 4 * m.bias().numel()
            for m in ref_q.modules()
            if type(m).__name__ == "Linear" and hasattr(m, "_packed_params")
        )
        t_ref = best_forward_seconds(ref_q, xt, cfg.repeats)
    size_f, size_pc, size_pt = model_size_bytes(model), model_size_bytes(q_pc), model_size_bytes(q_pt)
    t_f, t_pc = best_forward_seconds(model, xt, cfg.repeats), best_forward_seconds(q_pc, xt, cfg.repeats)
    run.progress(0.6, "int8 done")

    sweep, err = {}, {}
    with torch.no_grad():
        logits = model(xt)
        for bits in cfg.bit_widths:
            qb = quantize_dynamic(model, bits=bits, per_channel=True)
            sweep[bits] = (
                accuracy(qb, xt, yt),
                accuracy(quantize_dynamic(model, bits=bits, per_channel=False), xt, yt),
            )
            # relative logit error ||f_q(x) - f(x)|| / ||f(x)|| over the test set
            err[bits] = float((qb(xt) - logits).norm() / logits.norm())
        acc_low = accuracy(quantize_dynamic(model, bits=cfg.bits, per_channel=cfg.per_channel), xt, yt)

    run.metric("float_acc", acc_f)
    run.metric("int8_per_channel_acc", acc_pc, key=True)
    run.metric("int8_per_tensor_acc", acc_pt)
    run.metric("torch_dynamic_int8_acc", acc_ref)
    run.metric("float_bytes", size_f)
    run.metric("int8_per_channel_bytes", size_pc)
    run.metric("int8_per_tensor_bytes", size_pt)
    run.metric("torch_dynamic_int8_bytes_weights_scales_biases", size_ref)
    run.metric("size_ratio_per_channel", size_f / size_pc)
    run.metric("inference_ms_float", 1e3 * t_f)
    run.metric("inference_ms_ours_int8_simulated", 1e3 * t_pc)
    run.metric("inference_ms_torch_int8", 1e3 * t_ref)
    run.metric("acc_by_weight_bits_per_channel", {b: v[0] for b, v in sweep.items()})
    run.metric("acc_by_weight_bits_per_tensor", {b: v[1] for b, v in sweep.items()})
    run.metric("acc_low_bit", acc_low)
    run.check_ge("int8 (per channel) makes the model about 4x smaller", size_f / size_pc, 3.5)
    run.check_le("int8 per channel loses at most 1 accuracy point", acc_f - acc_pc, 0.01)
    run.check_le("int8 per tensor loses at most 1 accuracy point", acc_f - acc_pt, 0.01)
    run.check(
        "ours agrees with PyTorch's dynamic int8 quantization within 1 point",
        abs(acc_pt - acc_ref) <= 0.01,
        observed=acc_pt - acc_ref,
        expected="|difference| <= 0.01",
    )
    run.metric("relative_logit_error_by_weight_bits", err)
    errs = [err[b] for b in sorted(cfg.bit_widths, reverse=True)]
    run.check(
        "the rounding error of the outputs grows at every step down in bit-width",
        all(a < b for a, b in zip(errs, errs[1:])),
        observed=errs,
        expected="strictly increasing from 8 to 2 bits",
    )

    with run.figure(
        "accuracy-vs-bits",
        alt="test accuracy against weight bit-width for per-channel and "
        "per-tensor quantization, with the float model as a line; right: relative output error",
        figsize=(9, 3.8),
    ) as fig:
        ax, ax2 = fig.subplots(1, 2)
        bits = list(cfg.bit_widths)
        ax2.semilogy(bits, [err[b] for b in bits], "o-")
        ax2.set_xlabel("weight bits (per channel)")
        ax2.set_ylabel("relative logit error")
        ax2.invert_xaxis()
        ax.plot(bits, [sweep[b][0] for b in bits], "o-", label="per channel")
        ax.plot(bits, [sweep[b][1] for b in bits], "s-", label="per tensor")
        ax.axhline(acc_f, ls="--", c="gray", label="float32")
        ax.set_xlabel("weight bits (activations 8 bits)")
        ax.set_ylabel("test accuracy")
        ax.invert_xaxis()
        ax.legend()
