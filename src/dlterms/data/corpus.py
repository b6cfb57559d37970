"""An English corpus available offline: the docstrings of the Python standard library.

`docstrings()` imports every public standard-library module (and the submodules of its packages,
leaving out test suites, GUI toolkits, codecs, `__main__` scripts and modules with import side
effects), then collects, in sorted order of module and member names, the module docstring and the
docstrings of its public functions, classes and their public methods, each text once. The result
depends only on the Python version: it is collected in a fresh isolated interpreter (`python -I`), so
libraries the caller imported cannot change it, and it is cached per process.

On CPython 3.11 this gives about 6,000 docstrings and over 200,000 words of technical English.
`words()` lower-cases and splits it into alphabetic words; `sentences()` cuts it into sentences.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import io
import json
import pkgutil
import re
import subprocess
import sys
import warnings
from pathlib import Path

__all__ = ["docstrings", "text", "words", "sentences", "varied_sentences"]

# modules that open windows, print, need a GUI or Windows, are test suites, or are not prose
_SKIP_TOP = {
    "antigravity",
    "this",
    "idlelib",
    "tkinter",
    "turtle",
    "turtledemo",
    "test",
    "lib2to3",
    "pydoc_data",
    "ensurepip",
    "venv",
    "encodings",
    "msilib",
    "winreg",
    "winsound",
    "msvcrt",
    "nt",
    "sre_compile",
    "sre_parse",
    "sre_constants",
}
_SKIP_PARTS = {"test", "tests", "__main__", "idle_test"}


def _module_names() -> list[str]:
    names = set()
    for top in sorted(sys.stdlib_module_names):
        if top.startswith("_") or top in _SKIP_TOP:
            continue
        names.add(top)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                mod = importlib.import_module(top)
        except Exception:  # noqa: BLE001 - a module this platform lacks (e.g. Windows-only)
            continue
        path = getattr(mod, "__path__", None)
        if path is None:
            continue
        for info in pkgutil.walk_packages(path, prefix=top + ".", onerror=lambda name: None):
            parts = info.name.split(".")
            if any(p in _SKIP_PARTS or p.startswith("_") for p in parts):
                continue
            names.add(info.name)
    return sorted(names)


def _import_quietly(name: str):
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - unavailable on this platform
        return None


@functools.lru_cache(maxsize=1)
def _docstrings() -> tuple[str, ...]:
    # Collected in a fresh, isolated interpreter: libraries imported here (torch, transformers, ...)
    # patch standard-library objects (e.g. logging.Logger), which would otherwise change the corpus.
    out = subprocess.run(
        [sys.executable, "-I", str(Path(__file__).resolve())], capture_output=True, check=True, timeout=300
    )
    return tuple(json.loads(out.stdout.decode("ascii")))


def _collect_here() -> list[str]:
    seen: set[str] = set()
    docs: list[str] = []

    def add(d) -> None:
        if isinstance(d, str):
            d = inspect.cleandoc(d).strip()
            if len(d.split()) >= 3 and d not in seen:
                seen.add(d)
                docs.append(d)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reading some attributes warns (e.g. typing.io is deprecated)
        _collect(add)
    return docs


def _collect(add) -> None:
    for name in _module_names():
        mod = _import_quietly(name)
        if mod is None:
            continue
        add(mod.__doc__)
        for attr, obj in sorted(vars(mod).items()):
            if attr.startswith("_"):
                continue
            if inspect.isclass(obj):
                add(obj.__doc__)
                for m_attr, member in sorted(vars(obj).items()):
                    if not m_attr.startswith("_") and (callable(member) or isinstance(member, property)):
                        add(getattr(member, "__doc__", None))
            elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
                add(obj.__doc__)


def docstrings() -> list[str]:
    """The standard library's docstrings, cleaned (`inspect.cleandoc`), deduplicated, in a fixed order."""
    return list(_docstrings())


def text() -> str:
    """All docstrings joined by blank lines."""
    return "\n\n".join(_docstrings())


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(min_len: int = 1) -> list[str]:
    """The corpus as lower-case alphabetic words (apostrophes inside words kept), in order."""
    return [w for w in _WORD.findall(text().lower()) if len(w) >= min_len]


_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def sentences(min_words: int = 4, max_words: int = 40) -> list[str]:
    """Prose sentences: docstring paragraphs split after . ! ? (code-like lines dropped), with
    `min_words` to `max_words` words, whitespace collapsed."""
    out = []
    for d in _docstrings():
        for para in d.split("\n\n"):
            if ">>>" in para or para.lstrip().startswith(("-", "*", ":")):
                continue
            para = " ".join(para.split())
            for s in _SENT_END.split(para):
                if min_words <= len(s.split()) <= max_words and s[-1:] in ".!?":
                    out.append(s)
    return out


# Hand-written lines that exercise what English docstrings lack: accents, other scripts, CJK,
# emoji, odd whitespace and control characters, symbols, long words, mixed case and digits.
_VARIED = [
    "Café au lait, s'il vous plaît!",
    "Naïve résumé of a coöperative façade.",
    "Ångström, Øresund and Ærø.",
    "Straße und Größe: ÄÖÜ äöü ß.",
    "¿Dónde está la estación de tren?",
    "São Paulo é a maior cidade do Brasil.",
    "Ελληνικά: Καλημέρα κόσμε, ΣΟΦΙΑ.",
    "Привет, мир! Как дела?",
    "Český jazyk má háčky: č, ř, ž.",
    "Łódź jest w Polsce; Kraków też.",
    "İstanbul'da ılık bir gün.",
    "Tiếng Việt có nhiều dấu: ầ, ẫ, ự.",
    "東京は日本の首都です。",
    "我爱自然语言处理和深度学习。",
    "한국어 문장도 토큰화할 수 있을까요?",
    "日本語とEnglishのmixed文章。",
    "עברית נכתבת מימין לשמאל.",
    "اللغة العربية جميلة جدا.",
    "हिन्दी में एक वाक्य।",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Emoji: 😀🎉👍🏽 and ❤️ hearts.",
    "Math: ∑ x² ≤ ∞, √2 ≈ 1.414, π ≠ 3.",
    "Price: $19.99, €5, £3, ¥1000 (approx.)",
    "50% off!!! #deal @shop",
    "Tabs\tand\nnewlines\r\nand   multiple    spaces.",
    "Zero\u200bwidth\u200cjoiners\u200dhere.",
    "Soft\u00adhyphen and no\u00a0break space.",
    "Control\x07chars\x1bare\x00removed.",
    "Replacement \ufffd character.",
    "Combining: e\u0301 a\u0308 n\u0303 o\u0302.",
    "Full-width ＡＢＣ１２３！",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism.",
    "a" * 120 + " is too long.",
    "CamelCaseIdentifiersLikeThis and snake_case_names.",
    "URLs: https://example.com/path?q=1&r=2#frag",
    "email: someone@example.org, phone +1-555-0100.",
    "Quotes “curly” ‘single’ «guillemets» „low“.",
    "Dashes – en — em ‒ figure ― bar.",
    "Ellipsis… and middle·dot and bullet • point.",
    "Brackets [x], {y}, <z>, (w) and |pipes|.",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "UPPER CASE SHOUTING AND lower case whispers.",
    "Mixed: iPhone, eBay, McDonald's, O'Neill.",
    "Don't, can't, won't, shouldn't've.",
    "Hyphen-ated, well-known, state-of-the-art models.",
    "C++ and C# and F# are languages; so is R.",
    "x = f(a, b) + g[c] * h{d}",
    "1st, 2nd, 3rd and 4th place.",
    "Ünïcödé ïs fün tö tökënïzë.",
    "Deep learning (DL) uses GPUs/TPUs for training.",
    "The BERT model was introduced in 2018 by Devlin et al.",
    "Transformers: attention is all you need.",
    "Romanian: ș ț ă î â; Turkish: ğ ş ç ö ü.",
    "Ｔｈｉｓ　ｉｓ　ｆｕｌｌ　ｗｉｄｔｈ．",
    "Roman numerals Ⅻ and ⅷ.",
    "Ligatures: ﬁne ﬂow ﬀ.",
    "Superscripts x¹ y² z³ and subscripts H₂O.",
    "Arrows → ← ↑ ↓ ⇒ ⇔.",
    "Cards ♠ ♥ ♦ ♣ and chess ♔ ♕.",
    "Old Norse þ and ð; Icelandic Þór.",
    "Klingon?  No: just ASCII ~`^|\\.",
]


def varied_sentences(n: int = 250) -> list[str]:
    """`n` test sentences: the hand-written varied lines above, then evenly spaced corpus sentences."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = list(_VARIED[:n])
    pool = sentences()
    k = n - len(out)
    if k > 0:
        step = max(len(pool) // k, 1)
        out.extend(pool[::step][:k])
    return out


if __name__ == "__main__":  # run by _docstrings() in a fresh interpreter
    _docs = _collect_here()
    sys.stdout.write(json.dumps(_docs, ensure_ascii=True))
