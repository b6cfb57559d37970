"""Zero-shot learning: Python standard-library docstrings sorted into modules no model was trained on.

Inputs are the first paragraph of the docstring of every public function, method and class of ten
standard-library modules (math, random, re, json, shutil, statistics, socket, itertools, datetime,
zlib), read from the running interpreter. The classes are the modules, and the only side
information is one sentence describing each, written here. Inputs and descriptions are embedded by
the all-MiniLM-L6-v2 sentence encoder (our own BERT, `dlterms.models.bert`, with the shipped weights);
no example of any class is used to train anything, and each docstring gets the class whose description
is nearest in cosine similarity. Controls on the same embeddings: the bare module names as the side
information, and the descriptions shuffled among the classes (which should destroy the accuracy if
the side information is what carries it). Chance is 1/10 (the majority class is reported too).
"""

from __future__ import annotations

import importlib
import inspect
from collections import Counter
from dataclasses import dataclass

import torch

from dlterms.methods.protonets import zero_shot_predict
from dlterms.models.bert import encode
from dlterms.run import Run, experiment

DESCRIPTIONS = {
    "math": "mathematical functions of numbers: powers, roots, logarithms and trigonometry",
    "random": "random number generators and random sampling from distributions",
    "re": "regular expressions: searching and matching patterns in text strings",
    "json": "encoding Python objects as JSON text and decoding JSON documents",
    "shutil": "copying, moving, archiving and deleting files and directory trees",
    "statistics": "statistics of numeric data: mean, median, mode, variance, standard deviation",
    "socket": "network sockets, addresses and connections between hosts",
    "itertools": "iterators for looping: combinations, permutations, chaining and grouping sequences",
    "datetime": "dates, times, durations and time zones in the calendar",
    "zlib": "compressing and decompressing data with the deflate algorithm and checksums",
}


def module_docstrings(modname: str, max_chars: int = 300, min_chars: int = 20) -> list[str]:
    """First paragraph of each documented public routine or class defined by module `modname`."""
    mod = importlib.import_module(modname)
    out = []
    for name in sorted(dir(mod)):
        obj = getattr(mod, name)
        if name.startswith("_") or not (inspect.isroutine(obj) or inspect.isclass(obj)):
            continue
        home = getattr(obj, "__module__", None) or modname
        if home.lstrip("_") != modname:  # re-exported from elsewhere (e.g. OSError in shutil)
            continue
        doc = inspect.getdoc(obj) or ""
        paras = [p for p in doc.split("\n\n") if p.strip() and not p.strip().startswith(name + "(")]
        if paras:
            text = " ".join(paras[0].split())
            if len(text) >= min_chars:
                out.append(text[:max_chars])
    return sorted(set(out))


@dataclass(frozen=True)
class Config:
    """Parameters of the zero-shot experiment; the defaults are the recorded run."""

    modules: tuple[str, ...] = tuple(DESCRIPTIONS)  # the unseen classes: standard-library modules with a description
    max_chars: int = 300  # a docstring paragraph is cut to this many characters
    min_chars: int = 20  # shorter paragraphs are left out

    def __post_init__(self) -> None:
        unknown = [m for m in self.modules if m not in DESCRIPTIONS]
        if unknown or len(set(self.modules)) < 2 or len(set(self.modules)) != len(self.modules):
            raise ValueError(
                f"modules must be two or more distinct names of {', '.join(DESCRIPTIONS)}, got {self.modules!r}"
            )
        if not 1 <= self.min_chars <= self.max_chars:
            raise ValueError(f"need 1 <= min_chars <= max_chars, got {self.min_chars!r} and {self.max_chars!r}")


@experiment("zero-shot", config=Config)
def zero_shot(run: Run, cfg: Config) -> None:
    names = list(cfg.modules)
    texts, labels = [], []
    for k, m in enumerate(names):
        docs = module_docstrings(m, cfg.max_chars, cfg.min_chars)
        texts += docs
        labels += [k] * len(docs)
    y = torch.tensor(labels)
    run.progress(0.1, f"{len(texts)} docstrings")
    x_emb = encode(texts)
    desc_emb, name_emb = encode([DESCRIPTIONS[m] for m in names]), encode(names)
    run.progress(0.9, "encoded")
    g = run.generator(3)
    perm = torch.randperm(len(names), generator=g)
    while torch.any(perm == torch.arange(len(names))):  # a derangement: every class gets another's text
        perm = torch.randperm(len(names), generator=g)
    acc = {}
    for key, emb in (("descriptions", desc_emb), ("names_only", name_emb), ("shuffled_descriptions", desc_emb[perm])):
        pred = zero_shot_predict(x_emb, emb)
        acc[key] = float((pred == y).float().mean())
        run.metric(f"acc_{key}", acc[key], key=key == "descriptions")
        if key == "descriptions":
            per_class = {m: float((pred[y == k] == k).float().mean()) for k, m in enumerate(names)}
    counts = Counter(labels)
    majority = max(counts.values()) / len(labels)
    run.metric("n_docstrings", len(texts))
    run.metric("docstrings_per_module", {m: counts[k] for k, m in enumerate(names)})
    run.metric("acc_per_module_descriptions", per_class)
    run.metric("chance", 1 / len(names))
    run.metric("majority_class_rate", majority)
    run.check(
        "descriptions alone let unseen classes be recognised well above chance and the majority rate",
        acc["descriptions"] >= max(0.5, 2 * majority),
        observed=acc["descriptions"],
        expected=f">= {max(0.5, 2 * majority):.3f} (chance {1 / len(names):g}, majority {majority:.3f})",
    )
    run.check_le(
        "the side information carries it: shuffling the descriptions among classes drops accuracy to chance or below",
        acc["shuffled_descriptions"],
        0.15,
    )
    run.check(
        "richer side information helps: descriptions beat bare module names",
        acc["descriptions"] > acc["names_only"],
        observed=f"{acc['descriptions']:.3f} vs {acc['names_only']:.3f}",
        expected="descriptions > names",
    )

    with run.figure(
        "accuracy",
        alt="zero-shot accuracy with class descriptions, with module names only, and with "
        "shuffled descriptions; and accuracy per module",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 2])
        ax1.bar(range(3), [acc["descriptions"], acc["names_only"], acc["shuffled_descriptions"]])
        ax1.axhline(0.1, ls="--", c="gray", label="chance")
        ax1.set_xticks(range(3), ["descriptions", "names", "shuffled"], rotation=20)
        ax1.set_ylabel("accuracy")
        ax1.legend()
        ax2.bar(range(len(names)), list(per_class.values()))
        ax2.set_xticks(range(len(names)), names, rotation=45)
        ax2.set_ylim(0, 1)
        ax2.set_title("per module (descriptions)")
