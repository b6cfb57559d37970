"""Load, validate and look up the glossary entries.

Each entry is `entries/NNN-<id>.md`: a YAML front matter block between two `---` lines, then the
definition in Markdown. The front matter holds

    number      1..100, each once
    id          lower-case, hyphenated, unique (what users type)
    title       the heading shown to readers
    area        one of AREAS
    aliases     true synonyms of the title, shown as "Also called" (case-insensitive, unique across
                entries, none equal to the entry's own title)
    keywords    names a search should find that are not synonyms: instances (Adam under Optimizer),
                components (Gram matrix), related techniques (scheduled sampling); shown as
                "Includes". Unique across entries like aliases, and no keyword repeats one of the
                entry's own names
    does        one line saying what the term does, in plain words (used by search)
    describes   more plain-words statements of what the term is or does, as a learner might put
                it without knowing the name ("two networks trained against each other"); used by
                search like `does` (statements, not questions, none repeated across entries)
    questions   questions a learner might ask that the entry answers (used by search; each ends
                with "?", none repeated across entries)
    symptoms    what a learner sees when the term is the explanation or the fix ("the loss becomes
                NaN"), in a learner's words (used by search; statements, not questions, none
                repeated across entries)
    corrections where the source article is wrong or overstated about the term: a list of
                mappings with `source` (what it claims, in our words), `truth` (what holds),
                `evidence` (where that is shown) and optionally `experiment` (the id of a
                registered experiment that measures it)
    related     ids of other entries (must exist)
    code        dotted paths of the library objects that implement the term (must import)
    experiment  the id of the registered experiment, or empty while it is not written yet

`load()` checks everything that can be checked without importing the library (numbers, ids, areas,
related ids, clashes between the names of different entries, corrections' fields). The glossary
imports nothing of the library; `dlterms.audit.validate()` checks the entries against it (every
named code object imports, every named experiment is registered).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ENTRIES_DIR = Path(__file__).with_name("entries")
N_TERMS = 100

#: The areas, in the order the glossary presents them.
AREAS: tuple[str, ...] = (
    "foundations",
    "training",
    "generalization",
    "evaluation",
    "vision",
    "sequences",
    "representation",
    "paradigms",
)

_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FILE_RE = re.compile(r"^(\d{3})-([a-z0-9-]+)\.md$")


class GlossaryError(ValueError):
    """An entry file is malformed or the glossary as a whole is inconsistent."""


class UnknownTermError(KeyError):
    """A look-up matched no entry; `suggestions` holds the closest ids."""

    def __init__(self, name: str, suggestions: list[str]):
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown term {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]


@dataclass(frozen=True)
class Correction:
    """A claim of the source article about a term that is wrong or overstated, and what holds."""

    source: str
    truth: str
    evidence: str
    experiment: str | None = None

    def to_dict(self) -> dict:
        return {"source": self.source, "truth": self.truth, "evidence": self.evidence, "experiment": self.experiment}


@dataclass(frozen=True)
class Entry:
    """One glossary term: its front matter and its definition (Markdown)."""

    number: int
    id: str
    title: str
    area: str
    definition: str
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    experiment: str | None = None
    keywords: tuple[str, ...] = ()
    does: str | None = None
    describes: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    symptoms: tuple[str, ...] = ()
    corrections: tuple[Correction, ...] = ()
    path: Path | None = field(default=None, compare=False)

    @property
    def implemented(self) -> bool:
        """True when at least one library object implements the term."""
        return bool(self.code)

    @property
    def module_name(self) -> str | None:
        """Module that holds the experiment (`dlterms.experiments.<area>.<id_with_underscores>`)."""
        if not self.experiment:
            return None
        return f"dlterms.experiments.{self.area}.{self.experiment.replace('-', '_')}"

    def names(self) -> tuple[str, ...]:
        """Every name the entry answers to: id, title, the title's short and long form
        ("CNN" and "Convolutional Neural Network" for "Convolutional Neural Network (CNN)"),
        aliases and keywords."""
        out = [self.id, self.title]
        m = re.search(r"\(([^)]+)\)\s*$", self.title)
        if m:
            out += [m.group(1).strip(), self.title[: m.start()].strip()]
        return tuple(out) + self.aliases + self.keywords

    def summary(self, keep_math: bool = False) -> str:
        """The definition's first sentence, for tables and search results (LaTeX shown as its source
        unless `keep_math`, which keeps the $ delimiters for a renderer)."""
        text = " ".join(self.definition.split())
        if not keep_math:
            text = text.replace("$", "")
        m = re.search(r"(?<=[.!?])\s", text)
        return text[: m.start()] if m else text

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "id": self.id,
            "title": self.title,
            "area": self.area,
            "aliases": list(self.aliases),
            "related": list(self.related),
            "code": list(self.code),
            "experiment": self.experiment,
            "implemented": self.implemented,
            "keywords": list(self.keywords),
            "does": self.does,
            "describes": list(self.describes),
            "questions": list(self.questions),
            "symptoms": list(self.symptoms),
            "corrections": [c.to_dict() for c in self.corrections],
            "definition": self.definition,
        }


def _as_tuple(value, what: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise GlossaryError(f"{path.name}: {what} must be a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in value)


_CORRECTION_KEYS = {"source", "truth", "evidence"}


def _corrections(value, path: Path) -> tuple[Correction, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise GlossaryError(f"{path.name}: corrections must be a list of mappings, got {value!r}")
    out = []
    for i, c in enumerate(value):
        where = f"{path.name}: corrections[{i}]"
        if not isinstance(c, dict):
            raise GlossaryError(f"{where} must be a mapping with {sorted(_CORRECTION_KEYS)}, got {c!r}")
        missing = _CORRECTION_KEYS - c.keys()
        if missing:
            raise GlossaryError(f"{where} is missing {sorted(missing)}")
        unknown = c.keys() - _CORRECTION_KEYS - {"experiment"}
        if unknown:
            raise GlossaryError(f"{where} has unknown fields {sorted(unknown)}")
        for k in sorted(_CORRECTION_KEYS):
            if not isinstance(c[k], str) or not c[k].strip():
                raise GlossaryError(f"{where}: {k} must be a non-empty string, got {c[k]!r}")
        experiment = c.get("experiment")
        if experiment is not None and (not isinstance(experiment, str) or not _ID_RE.match(experiment)):
            raise GlossaryError(f"{where}: experiment must be an experiment id, got {experiment!r}")
        out.append(
            Correction(
                source=" ".join(c["source"].split()),
                truth=" ".join(c["truth"].split()),
                evidence=" ".join(c["evidence"].split()),
                experiment=experiment,
            )
        )
    return tuple(out)


def _questions(value, path: Path) -> tuple[str, ...]:
    out = tuple(" ".join(q.split()) for q in _as_tuple(value, "questions", path))
    for q in out:
        if not q.endswith("?"):
            raise GlossaryError(f"{path.name}: questions must end with '?', got {q!r}")
    if len({q.casefold() for q in out}) != len(out):
        raise GlossaryError(f"{path.name}: a question is listed twice")
    return out


def _statements(value, what: str, path: Path) -> tuple[str, ...]:
    """`symptoms` or `describes`: non-empty statements, none ending with '?', none listed twice."""
    out = tuple(" ".join(s.split()) for s in _as_tuple(value, what, path))
    for s in out:
        if s.endswith("?"):
            raise GlossaryError(f"{path.name}: {what} are statements, not questions, got {s!r}")
    if len({s.casefold() for s in out}) != len(out):
        raise GlossaryError(f"{path.name}: {'a symptom' if what == 'symptoms' else 'a description'} is listed twice")
    return out


def _symptoms(value, path: Path) -> tuple[str, ...]:
    return _statements(value, "symptoms", path)


def _check_own_names(e: Entry, path: Path) -> None:
    """Within one entry: no alias or keyword repeats the title or another alias or keyword."""
    own = {e.title.casefold()}
    seen: dict[str, str] = {}
    for what, names in (("alias", e.aliases), ("keyword", e.keywords)):
        for name in names:
            key = name.casefold()
            if key in own:
                raise GlossaryError(f"{path.name}: {what} {name!r} is the entry's own title")
            if key in seen:
                raise GlossaryError(f"{path.name}: {what} {name!r} repeats the {seen[key]} {name!r}")
            seen[key] = what


def parse_entry(path: Path) -> Entry:
    """Parse one entry file, raising GlossaryError with the file name on any problem."""
    text = path.read_text(encoding="utf-8")
    parts = re.split(r"^---\s*$", text, maxsplit=2, flags=re.MULTILINE)
    if len(parts) != 3 or parts[0].strip():
        raise GlossaryError(f"{path.name}: expected front matter between two '---' lines at the top")
    try:
        meta = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError as exc:
        raise GlossaryError(f"{path.name}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise GlossaryError(f"{path.name}: front matter must be a mapping")
    required = {"number", "id", "title", "area"}
    missing = required - meta.keys()
    if missing:
        raise GlossaryError(f"{path.name}: missing front-matter fields {sorted(missing)}")
    unknown = (
        meta.keys()
        - required
        - {
            "aliases",
            "keywords",
            "does",
            "describes",
            "questions",
            "symptoms",
            "corrections",
            "related",
            "code",
            "experiment",
        }
    )
    if unknown:
        raise GlossaryError(f"{path.name}: unknown front-matter fields {sorted(unknown)}")
    number, term_id = meta["number"], meta["id"]
    if not isinstance(number, int) or not 1 <= number <= N_TERMS:
        raise GlossaryError(f"{path.name}: number must be an integer in 1..{N_TERMS}, got {number!r}")
    if not isinstance(term_id, str) or not _ID_RE.match(term_id):
        raise GlossaryError(f"{path.name}: id must be lower-case and hyphenated, got {term_id!r}")
    m = _FILE_RE.match(path.name)
    if not m or int(m.group(1)) != number or m.group(2) != term_id:
        raise GlossaryError(f"{path.name}: file name must be {number:03d}-{term_id}.md")
    if meta["area"] not in AREAS:
        raise GlossaryError(f"{path.name}: area must be one of {', '.join(AREAS)}, got {meta['area']!r}")
    experiment = meta.get("experiment") or None
    if experiment is not None and (not isinstance(experiment, str) or not _ID_RE.match(experiment)):
        raise GlossaryError(f"{path.name}: experiment must be an id or empty, got {experiment!r}")
    definition = parts[2].strip()
    if not definition:
        raise GlossaryError(f"{path.name}: the definition is empty")
    does = meta.get("does")
    if does is not None and (not isinstance(does, str) or not does.strip()):
        raise GlossaryError(f"{path.name}: does must be a non-empty string, got {does!r}")
    title = meta["title"]
    if not isinstance(title, str) or not title.strip():
        raise GlossaryError(f"{path.name}: title must be a non-empty string, got {title!r}")
    entry = Entry(
        number=number,
        id=term_id,
        title=title.strip(),
        area=meta["area"],
        definition=definition,
        aliases=_as_tuple(meta.get("aliases"), "aliases", path),
        related=_as_tuple(meta.get("related"), "related", path),
        code=_as_tuple(meta.get("code"), "code", path),
        experiment=experiment,
        keywords=_as_tuple(meta.get("keywords"), "keywords", path),
        does=" ".join(does.split()) if does else None,
        describes=_statements(meta.get("describes"), "describes", path),
        questions=_questions(meta.get("questions"), path),
        symptoms=_symptoms(meta.get("symptoms"), path),
        corrections=_corrections(meta.get("corrections"), path),
        path=path,
    )
    _check_own_names(entry, path)
    return entry


def _check_consistency(items: list[Entry], complete: bool) -> None:
    by_number: dict[int, Entry] = {}
    by_id: dict[str, Entry] = {}
    for e in items:
        if e.number in by_number:
            raise GlossaryError(f"number {e.number} is used by both {by_number[e.number].id!r} and {e.id!r}")
        if e.id in by_id:
            raise GlossaryError(f"id {e.id!r} is used twice")
        by_number[e.number] = e
        by_id[e.id] = e
    if complete:
        missing = sorted(set(range(1, N_TERMS + 1)) - by_number.keys())
        if missing:
            raise GlossaryError(f"entries missing for numbers {missing}")
    names: dict[str, str] = {}
    for e in items:
        for name in e.names():
            key = name.casefold()
            owner = names.get(key)
            if owner is not None and owner != e.id:
                raise GlossaryError(f"name {name!r} of {e.id!r} is already a name of {owner!r}")
            names[key] = e.id
        for r in e.related:
            if r not in by_id:
                raise GlossaryError(f"{e.id}: related id {r!r} does not exist")
            if r == e.id:
                raise GlossaryError(f"{e.id}: an entry cannot be related to itself")
        if e.experiment and e.experiment != e.id:
            raise GlossaryError(f"{e.id}: experiment id must equal the entry id, got {e.experiment!r}")
    for what, attr in (("question", "questions"), ("symptom", "symptoms"), ("description", "describes")):
        seen: dict[str, str] = {}
        for e in items:
            for q in getattr(e, attr):
                owner = seen.setdefault(q.casefold(), e.id)
                if owner != e.id:
                    raise GlossaryError(f"{e.id}: {what} {q!r} is already one of {owner!r}")
    for e in items:
        for c in e.corrections:
            if c.experiment is None:
                continue
            target = by_id.get(c.experiment)
            if target is None or target.experiment != c.experiment:
                raise GlossaryError(
                    f"{e.id}: a correction's experiment {c.experiment!r} is not the experiment of any entry"
                )


@functools.lru_cache(maxsize=4)
def load(directory: Path | None = None, complete: bool = True) -> tuple[Entry, ...]:
    """Read and check every entry, sorted by number. Cached; pass a directory to load another set."""
    directory = Path(directory) if directory else ENTRIES_DIR
    paths = sorted(directory.glob("*.md"))
    items = [parse_entry(p) for p in paths]
    _check_consistency(items, complete=complete)
    return tuple(sorted(items, key=lambda e: e.number))


def entries(area: str | None = None) -> tuple[Entry, ...]:
    """All entries, or those of one area."""
    items = load()
    if area is None:
        return items
    if area not in AREAS:
        raise ValueError(f"area must be one of {', '.join(AREAS)}, got {area!r}")
    return tuple(e for e in items if e.area == area)


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, Entry]:
    index: dict[str, Entry] = {}
    for e in load():
        # Names are unique across entries (load() checks it), so no entry shadows another here;
        # "Convolutional Neural Network (CNN)" is also reachable as "CNN" (see Entry.names).
        for name in (str(e.number), *e.names()):
            index[name.casefold()] = e
    return index


def get(name: str | int) -> Entry:
    """Look up an entry by id, number, title, alias or keyword (case-insensitive).

    Raises UnknownTermError with up to three close matches when nothing matches.
    """
    key = str(name).strip().casefold()
    index = _index()
    if key in index:
        return index[key]
    if key.replace(" ", "-") in index:
        return index[key.replace(" ", "-")]
    close = difflib.get_close_matches(key, list(index), n=8, cutoff=0.6)
    seen: list[str] = []
    for c in close:
        if index[c].id not in seen:
            seen.append(index[c].id)
    if not seen:
        seen = [e.id for e in load() if key and (key in e.id or key in e.title.casefold())]
    raise UnknownTermError(str(name), seen[:3])


def resolve_code(path: str):
    """Import `pkg.module.Object` (or a module) and return it."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as exc:
            if exc.name and ".".join(parts[:i]).startswith(exc.name) is False:
                raise
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot import {path!r}")
