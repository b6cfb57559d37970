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


def few_shot_comparison(
    run: Run,
    pretrained: ConvNet,
    target: Split,
    n_per_class: int,
    modes: Sequence[str],
    backbone_lr: float = 1e-3,
    head_lr: float = 1e-2,
    n_draws: int = N_DRAWS,
) -> dict[str, list[float]]:
    """Target test accuracy per draw of `n_per_class` labels, for each mode:
    "frozen" (pretrained backbone frozen, new linear head), "fine-tune" (pretrained backbone trained at
    `backbone_lr`, batch-norm statistics kept, new head at `head_lr`), "scratch" (same network, random
    initialisation, all trained at `head_lr`). `n_draws` random draws of the labelled set."""
    acc: dict[str, list[float]] = {m: [] for m in modes}
    for draw in range(n_draws):
        t = target.subset_train(5 * n_per_class, seed=run.seed + draw)
        for mode in modes:
            torch.manual_seed(run.seed + draw)
            if mode == "scratch":
                model = mnist1d_cnn(n_classes=5).to(run.device)
                params = None
            else:
                backbone = Backbone.from_model(copy.deepcopy(pretrained))
                if mode == "frozen":
                    backbone.freeze()
                else:
                    backbone.freeze_batch_norm()
                model = MultiHead(backbone, {"target": Linear(backbone.out_features, 5)}).to(run.device)
                params = (
                    trainable_parameters(model.heads)
                    if mode == "frozen"
                    else [
                        {"params": trainable_parameters(backbone), "lr": backbone_lr},
                        {"params": trainable_parameters(model.heads), "lr": head_lr},
                    ]
                )
            train_cnn(run, model, t.x_train, t.y_train, TARGET_EPOCHS, lr=head_lr, params=params, batch_size=None)
            acc[mode].append(accuracy(model, t.x_test, t.y_test))
        run.progress(0.4 + 0.6 * (draw + 1) / n_draws, f"draw {draw + 1}/{n_draws}")
    return acc


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
