"""Pooling layer: correctness against torch, output sizes, and what pooling saves downstream.

Measured: (1) our max, average and global pooling equal torch's on random configurations (values
and gradients) and every output size matches floor((n + 2p - d(k-1) - 1)/s) + 1; (2) in the digits
CNN, a 2x2 max-pool after each conv block cuts the positions each later layer sees by 4x, so the
second conv's multiply-accumulates fall 4x and the head's parameters 16x; (3) the pooled network
costs at most 1 point of test accuracy against the same network without pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.models.cnn import ConvNet, count_macs, count_parameters
from dlterms.nn.pooling import GlobalAvgPool, GlobalMaxPool, avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from dlterms.optim import Adam
from dlterms.optim.schedules import CosineAnnealingLR
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit

N_RANDOM = 100
EPOCHS = 10


def _reference_errors(run: Run) -> tuple[float, float, int]:
    rng, gen = run.rng(1), run.generator(1)
    worst_val = worst_grad = 0.0
    size_ok = 0
    for i in range(N_RANDOM):
        nd = 1 + i % 2
        k = [int(v) for v in rng.integers(1, 5, nd)]
        s = [int(v) for v in rng.integers(1, 4, nd)]
        p = [int(rng.integers(0, kk // 2 + 1)) for kk in k]
        size = [int(rng.integers(kk, 20)) for kk in k]
        x = torch.randn(2, 3, *size, generator=gen, dtype=torch.float64).to(run.device).requires_grad_(True)
        pairs = (
            ((max_pool1d, F.max_pool1d), (avg_pool1d, F.avg_pool1d))
            if nd == 1
            else ((max_pool2d, F.max_pool2d), (avg_pool2d, F.avg_pool2d))
        )
        for ours, ref in pairs:
            y, r = ours(x, k, s, p), ref(x, k, s, p)
            g = torch.randn(r.shape, generator=gen, dtype=torch.float64).to(run.device)
            worst_val = max(worst_val, (y - r).abs().max().item())
            gy, gr = torch.autograd.grad(y, x, g)[0], torch.autograd.grad(r, x, g)[0]
            worst_grad = max(worst_grad, (gy - gr).abs().max().item())
            expect = [(n + 2 * pp - kk) // ss + 1 for n, pp, kk, ss in zip(size, p, k, s)]
            size_ok += list(y.shape[2:]) == expect
        worst_val = max(
            worst_val,
            (GlobalAvgPool()(x) - x.flatten(2).mean(-1)).abs().max().item(),
            (GlobalMaxPool()(x) - x.flatten(2).amax(-1)).abs().max().item(),
        )
    return worst_val, worst_grad, size_ok


@experiment("pooling-layer")
def pooling_layer(run: Run) -> None:
    worst_val, worst_grad, size_ok = _reference_errors(run)
    run.progress(0.2, "reference comparison done")

    d = digits(images=True).to(run.device)
    models, acc, params, macs = {}, {}, {}, {}
    for name, pool in (("pooled", 2), ("unpooled", None)):
        torch.manual_seed(run.seed)
        m = ConvNet(1, 10, (8, 8), channels=(16, 32), pool=pool, batch_norm=True).to(run.device)
        opt = Adam(m.parameters(), lr=3e-3)
        fit(
            m,
            (d.x_train, d.y_train),
            loss_fn=cross_entropy,
            optimizer=opt,
            epochs=EPOCHS,
            batch_size=64,
            seed=run.seed,
            scheduler=CosineAnnealingLR(opt, T_max=EPOCHS),
        )
        models[name], acc[name] = m, accuracy(m, d.x_test, d.y_test)
        params[name] = {"total": count_parameters(m), "head": count_parameters(m.head)}
        macs[name] = count_macs(m, d.x_test[:1])
        run.progress(0.2 + 0.4 * (name == "pooled") + 0.4 * (name == "unpooled"), f"{name} CNN trained")
    conv2 = [n for n in macs["pooled"] if n.startswith("features")][1]
    conv2_u = [n for n in macs["unpooled"] if n.startswith("features")][1]
    mac_ratio_conv2 = macs["unpooled"][conv2_u] / macs["pooled"][conv2]
    head_ratio = params["unpooled"]["head"] / params["pooled"]["head"]
    total_macs = {k: sum(v.values()) for k, v in macs.items()}

    run.metric("max_abs_error_vs_torch", worst_val)
    run.metric("max_abs_grad_error_vs_torch", worst_grad)
    run.metric("feature_map_pooled", list(models["pooled"].feature_shape))
    run.metric("feature_map_unpooled", list(models["unpooled"].feature_shape))
    run.metric("head_params_pooled", params["pooled"]["head"])
    run.metric("head_params_unpooled", params["unpooled"]["head"])
    run.metric("total_params_pooled", params["pooled"]["total"])
    run.metric("total_params_unpooled", params["unpooled"]["total"])
    run.metric("macs_per_image_pooled", total_macs["pooled"])
    run.metric("macs_per_image_unpooled", total_macs["unpooled"])
    run.metric("head_param_reduction", round(head_ratio, 2), key=True)
    run.metric("test_acc_pooled", round(acc["pooled"], 4))
    run.metric("test_acc_unpooled", round(acc["unpooled"], 4))

    run.check(
        "max/avg/global pooling equal torch's (values)",
        worst_val < 1e-12,
        observed=worst_val,
        expected="< 1e-12 (float64)",
    )
    run.check(
        "max/avg pooling gradients equal torch's", worst_grad < 1e-12, observed=worst_grad, expected="< 1e-12 (float64)"
    )
    run.check(
        "every output size follows floor((n + 2p - k)/s) + 1",
        size_ok == 2 * N_RANDOM,
        observed=f"{size_ok}/{2 * N_RANDOM}",
        expected=f"{2 * N_RANDOM}/{2 * N_RANDOM}",
    )
    run.check(
        "2x2 pooling before conv 2 cuts its multiply-accumulates 4x",
        abs(mac_ratio_conv2 - 4) < 1e-9,
        observed=mac_ratio_conv2,
        expected="4 (= 8*8 / 4*4 positions)",
    )
    run.check(
        "two 2x2 poolings cut the head's parameters ~16x",
        head_ratio >= 15,
        observed=round(head_ratio, 2),
        expected=">= 15 (weights exactly 16x; bias unchanged)",
    )
    run.check(
        "pooling costs at most 1 point of test accuracy",
        acc["pooled"] >= acc["unpooled"] - 0.01,
        observed=round(acc["pooled"], 4),
        expected=f">= {acc['unpooled'] - 0.01:.4f}",
    )

    with run.figure(
        "pooling-savings",
        alt="parameters and multiply-accumulates per layer of the digits CNN with and without 2x2 max pooling",
        figsize=(9, 3.5),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        layers = ["conv 1", "conv 2", "head"]
        for j, name in enumerate(("pooled", "unpooled")):
            vals = list(macs[name].values())
            ax1.bar([i + 0.4 * j for i in range(3)], vals, width=0.4, label=f"{name} (acc {acc[name]:.3f})")
        ax1.set(
            xticks=[i + 0.2 for i in range(3)],
            xticklabels=layers,
            yscale="log",
            ylabel="multiply-accumulates per image",
            title="compute",
        )
        ax1.legend(fontsize=8)
        ax2.bar(["pooled", "unpooled"], [params["pooled"]["head"], params["unpooled"]["head"]])
        ax2.set(ylabel="head parameters", title="parameters of the classifier head")
