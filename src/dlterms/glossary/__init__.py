"""The glossary: 100 entries (Markdown with front matter) and the registry that loads them.

Importing this package is cheap: it reads text files only, never torch, so `dlterms list`
answers quickly.
"""

from dlterms.glossary.registry import (
    AREAS,
    Entry,
    GlossaryError,
    UnknownTermError,
    entries,
    get,
    load,
)

__all__ = ["AREAS", "Entry", "GlossaryError", "UnknownTermError", "entries", "get", "load"]
