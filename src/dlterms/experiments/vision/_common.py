"""Set-ups shared by the vision experiments: the trained 8x8 digits CNN; the MNIST-1D transfer task."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from dlterms.data.datasets import Split, digits, mnist1d
from dlterms.losses import cross_entropy
from dlterms.models.backbone import Backbone, MultiHead, trainable_parameters
from dlterms.models.cnn import ConvNet, digits_cnn, mnist1d_cnn
from dlterms.nn import Linear
from dlterms.optim import Adam
from dlterms.optim.schedules import CosineAnnealingLR
from dlterms.run import Run
from dlterms.stacked import ModelStack, side_by_side_body, write_back_body
from dlterms.training import accuracy, fit

DIGITS_EPOCHS = 12  # batch 64, Adam 3e-3 cosine-annealed: 0.989-0.991 test accuracy on three seeds


def trained_digits_cnn(run: Run, epochs: int = DIGITS_EPOCHS, seed: int | None = None) -> tuple[ConvNet, Split]:
    """The digits CNN (`digits_cnn`, batch norm) trained on the standard split; (model, split on run.device).
    `seed` (default: the run's) sets the initialisation and the batch order."""
    seed = run.seed if seed is None else seed
    d = digits(images=True).to(run.device)
    torch.manual_seed(seed)
    model = digits_cnn().to(run.device)
    opt = Adam(model.parameters(), lr=3e-3)
    fit(
        model,
        (d.x_train, d.y_train),
        loss_fn=cross_entropy,
        optimizer=opt,
        epochs=epochs,
        batch_size=64,
        seed=seed,
        scheduler=CosineAnnealingLR(opt, T_max=epochs),
    )
    model.eval()
    return model, d


# ---- transfer set-up: source task MNIST-1D classes 0-4, target task classes 5-9 with few labels
# (on 8x8 digits the same split showed no transfer gain: a scratch CNN learns 5-9 from 1-5 labels per
# class about as well as a head on 0-4 features, 0.75-0.94 either way)

SOURCE_EPOCHS = 10  # pretraining on the ~2000 source signals, batch 100, Adam 1e-2 cosine
TARGET_EPOCHS = 50  # full-batch steps on the few target labels
N_DRAWS = 5  # few-shot results are averaged over this many random draws of the labelled set


def mnist1d_source_target(run: Run) -> tuple[Split, Split]:
    """(source, target): MNIST-1D classes 0-4 (labels 0-4) and classes 5-9 (labels 0-4), train and test."""
    d = mnist1d(channels=True)
    s, st = d.y_train < 5, d.y_test < 5
    source = Split(d.x_train[s], d.y_train[s], d.x_test[st], d.y_test[st])
    target = Split(d.x_train[~s], d.y_train[~s] - 5, d.x_test[~st], d.y_test[~st] - 5)
    return source.to(run.device), target.to(run.device)


def train_cnn(
    run: Run,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float = 3e-3,
    params=None,
    batch_size: int | None = 64,
) -> nn.Module:
    """Adam (cosine-annealed) on `params` (default: all of the model's; may be param groups) via `fit`."""
    opt = Adam(model.parameters() if params is None else params, lr=lr)
    fit(
        model,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        seed=run.seed,
        scheduler=CosineAnnealingLR(opt, T_max=epochs),
    )
    return model


def pretrained_source_cnn(run: Run, source: Split, epochs: int = SOURCE_EPOCHS) -> ConvNet:
    """The MNIST-1D CNN trained on the source task (classes 0-4) for `epochs` epochs."""
    torch.manual_seed(run.seed)
    model = mnist1d_cnn(n_classes=5).to(run.device)
    return train_cnn(run, model, source.x_train, source.y_train, epochs, lr=1e-2, batch_size=100)


FEW_SHOT_MODES = ("frozen", "fine-tune", "scratch")


def few_shot_model(
    pretrained: ConvNet, mode: str, backbone_lr: float = 1e-3, head_lr: float = 1e-2
) -> tuple[nn.Module, list[dict]]:
    """One draw's model for `mode` (initialised from the global torch seed) and its Adam parameter groups:
    "frozen" (a copy of the pretrained backbone, frozen, and a new linear head), "fine-tune" (the copy
    trained at `backbone_lr`, batch-norm statistics kept, the new head at `head_lr`), "scratch" (the same
    network, randomly initialised, all trained at `head_lr`)."""
    if mode not in FEW_SHOT_MODES:
        raise ValueError(f"mode must be one of {FEW_SHOT_MODES}, got {mode!r}")
    device = next(pretrained.parameters()).device
    if mode == "scratch":
        model = mnist1d_cnn(n_classes=5).to(device)
        return model, [{"params": list(model.parameters()), "lr": head_lr}]
    backbone = Backbone.from_model(copy.deepcopy(pretrained))
    if mode == "frozen":
        backbone.freeze()
    else:
        backbone.freeze_batch_norm()
    model = MultiHead(backbone, {"target": Linear(backbone.out_features, 5)}).to(device)
    if mode == "frozen":
        return model, [{"params": trainable_parameters(model.heads), "lr": head_lr}]
    return model, [
        {"params": trainable_parameters(backbone), "lr": backbone_lr},
        {"params": trainable_parameters(model.heads), "lr": head_lr},
    ]


def few_shot_models(
    run: Run,
    pretrained: ConvNet,
    draws: Sequence[Split],
    mode: str,
    backbone_lr: float = 1e-3,
    head_lr: float = 1e-2,
    epochs: int = TARGET_EPOCHS,
    side_by_side: bool = True,
) -> list[nn.Module]:
    """One `few_shot_model(pretrained, mode)` per labelled set in `draws`, initialised from seed
    run.seed + k for draws[k] and trained full-batch on its examples by `train_cnn` (Adam, cosine over
    `epochs` steps; the batch order from seed run.seed).

    `side_by_side=False` trains them one after another, as written. `side_by_side=True` (the default)
    trains all of them at once, which gives the same models up to float rounding (tested) in a fraction
    of the time: every draw has the same number of examples, so the models' convolutional bodies run
    as one network with a block of channels per model (`dlterms.stacked.side_by_side_body`) and their heads as a
    `ModelStack`; a frozen body's features are computed once per draw.
    """
    if not draws:
        raise ValueError("draws must hold at least one labelled set, got none")
    built = []
    for k in range(len(draws)):
        torch.manual_seed(run.seed + k)
        built.append(few_shot_model(pretrained, mode, backbone_lr, head_lr))
    models = [m for m, _ in built]
    if not side_by_side:
        for (model, groups), d in zip(built, draws):
            train_cnn(run, model, d.x_train, d.y_train, epochs, lr=head_lr, params=groups, batch_size=None)
        return models
    sizes = {len(d.y_train) for d in draws}
    if len(sizes) != 1:
        raise ValueError(f"side by side training needs draws of one size, got sizes {sorted(sizes)}")
    x = torch.stack([d.x_train for d in draws])  # (M, B, C, L): model k sees x[k]
    y = torch.stack([d.y_train for d in draws])  # (M, B)
    _train_side_by_side(models, mode, x, y, epochs, backbone_lr, head_lr, seed=run.seed)
    return models


def few_shot_comparison(
    run: Run,
    pretrained: ConvNet,
    target: Split,
    n_per_class: int,
    modes: Sequence[str],
    backbone_lr: float = 1e-3,
    head_lr: float = 1e-2,
    n_draws: int = N_DRAWS,
    side_by_side: bool = True,
) -> dict[str, list[float]]:
    """Target test accuracy per draw of `n_per_class` labels per class, for each mode of
    `few_shot_model` ("frozen", "fine-tune", "scratch"). `n_draws` random draws of the labelled set
    (draw k from seed run.seed + k), paired: every mode gets the same draws and initialisation seeds.
    `side_by_side`: see `few_shot_models`; it also tests the frozen models' heads on the test set's
    features computed once (every frozen backbone is the pretrained one, unchanged)."""
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws!r}")
    draws = [target.subset_train(5 * n_per_class, seed=run.seed + k) for k in range(n_draws)]
    acc: dict[str, list[float]] = {}
    for j, mode in enumerate(modes):
        models = few_shot_models(run, pretrained, draws, mode, backbone_lr, head_lr, side_by_side=side_by_side)
        with torch.no_grad():
            if side_by_side and mode == "frozen":
                feats = models[0].backbone.eval()(target.x_test)  # (N_test, d), the same for every model
                acc[mode] = [accuracy(m.heads["target"], feats, target.y_test) for m in models]
            else:
                acc[mode] = [accuracy(m, target.x_test, target.y_test) for m in models]
        run.progress(0.4 + 0.6 * (j + 1) / len(modes), f"{mode}: {n_draws} draws")
    return acc


# ---- the fast path of `few_shot_models`: M models of one architecture trained at once


def _parts(model: nn.Module) -> tuple[nn.Sequential, nn.Module, int]:
    """(conv body, linear head, feature size) of a scratch `ConvNet` or a `MultiHead` on a pretrained backbone."""
    if isinstance(model, ConvNet):
        return model.features, model.head, model.n_features
    return model.backbone.features, model.heads["target"], model.backbone.out_features


def _train_side_by_side(
    models: Sequence[nn.Module],
    mode: str,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    backbone_lr: float,
    head_lr: float,
    seed: int,
) -> None:
    """Train model k on (x[k], y[k]) as `few_shot_models` trains it alone, all M at once, in place.

    The summed loss sum_k L_k gives each model's parameters their own gradient dL_k/dtheta_k (no other
    loss reaches them), and Adam updates every element on its own, so each block of the joint parameters
    takes the steps its model would take alone (the same learning rates, cosine schedule and batch order).
    """
    M, B = y.shape
    bodies, heads, dims = zip(*(_parts(m) for m in models))
    head = ModelStack(heads)
    if mode == "frozen":  # the body is fixed: every model's features once, from its own (frozen) body
        with torch.no_grad():
            feats = torch.stack([body.eval()(xk).flatten(1) for body, xk in zip(bodies, x)])  # (M, B, d)
        groups = [{"params": head.parameters(), "lr": head_lr}]
        body = None
    else:
        body = Backbone(side_by_side_body(bodies), M * dims[0])  # (B, M*C, L) -> (B, M*d)
        if mode == "fine-tune":
            body.freeze_batch_norm()
        groups = [
            {"params": list(body.parameters()), "lr": backbone_lr if mode == "fine-tune" else head_lr},
            {"params": head.parameters(), "lr": head_lr},
        ]
    opt = Adam(groups, lr=head_lr)
    scheduler = CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)  # `fit`'s: one shuffled full batch per epoch
    for _ in range(epochs):
        idx = torch.randperm(B, generator=gen)
        opt.zero_grad(set_to_none=True)
        if body is None:
            h = feats[:, idx]  # (M, B, d)
        else:
            body.train()
            xb = x[:, idx].transpose(0, 1).flatten(1, 2)  # (B, M*C, L): model k's channels in block k
            h = body(xb).view(B, M, -1).transpose(0, 1)  # (B, M*d) -> (M, B, d)
        logits = head(h)  # (M, B, n_classes): head k on model k's features
        # sum_k L_k, L_k model k's mean cross-entropy over its B examples
        loss = M * cross_entropy(logits.flatten(0, 1), y[:, idx].flatten())
        loss.backward()
        opt.step()
        scheduler.step()
    if body is not None:
        write_back_body(body.features, bodies)
    with torch.no_grad():
        for k, own in enumerate(heads):
            for name, p in own.named_parameters():
                p.copy_(head.params[name][k])


# ---- a small text-classification task for transfer from the pretrained MiniLM sentence encoder

DOC_MODULES = ("asyncio", "unittest", "logging", "tarfile", "pathlib")  # stdlib modules with >= 50 docstrings
DOCS_PER_CLASS = 50


def _first_sentence(doc: str) -> str:
    import re

    text = " ".join(doc.split())
    return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0][:200]


def docstring_task() -> tuple[list[str], torch.Tensor]:
    """First sentences of the docstrings of the public members of the `DOC_MODULES` (and of their
    classes' public methods), labelled by module: `DOCS_PER_CLASS` per class, sorted, deduplicated.
    The task: from one sentence, tell which module it documents."""
    import importlib
    import inspect

    texts: list[str] = []
    labels: list[int] = []
    for k, name in enumerate(DOC_MODULES):
        mod = importlib.import_module(name)
        found: set[str] = set()
        for member, obj in inspect.getmembers(mod):
            if member.startswith("_"):
                continue
            objs = [obj]
            if inspect.isclass(obj):
                objs += [v for n, v in inspect.getmembers(obj) if not n.startswith("_") and inspect.isfunction(v)]
            for o in objs:
                doc = inspect.getdoc(o)
                if doc and len(doc.split()) > 3 and str(getattr(o, "__module__", "")).startswith(name):
                    found.add(_first_sentence(doc))
        chosen = sorted(found)[:DOCS_PER_CLASS]
        texts += chosen
        labels += [k] * len(chosen)
    return texts, torch.tensor(labels)


def bag_of_words(texts: Sequence[str]) -> torch.Tensor:
    """Word-count vectors (N, V) over the lower-cased alphabetic words of `texts`."""
    import re

    tokens = [re.findall(r"[a-z]+", t.lower()) for t in texts]
    vocab: dict[str, int] = {}
    for ts in tokens:
        for w in ts:
            vocab.setdefault(w, len(vocab))
    x = torch.zeros(len(texts), len(vocab))
    for i, ts in enumerate(tokens):
        for w in ts:
            x[i, vocab[w]] += 1
    return x
