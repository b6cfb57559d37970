"""Turn entry Markdown (with $...$ / $$...$$ LaTeX) into safe HTML, and code into highlighted HTML.

Math is cut out before Markdown sees it (so `_` and `*` inside equations are not emphasis),
converted to MathML by latex2mathml, and put back. Raw HTML in entries is escaped, never passed
through.
"""

from __future__ import annotations

import html
import inspect
import re

from markdown_it import MarkdownIt

_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.DOTALL)
_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def latex_to_mathml(tex: str, display: bool = False) -> str:
    """MathML for one LaTeX formula; the escaped source in <code> if it cannot be converted."""
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - a formula the converter cannot read is shown as source
        return f'<code class="tex">{html.escape(tex)}</code>'


def markdown_to_html(text: str) -> str:
    """Markdown with LaTeX math to HTML (raw HTML in the source is escaped)."""
    formulas: list[str] = []

    def stash(m: re.Match) -> str:
        display = m.group(1) is not None
        formulas.append(latex_to_mathml(m.group(1) if display else m.group(2), display))
        return f"@@MATH{len(formulas) - 1}@@"

    protected = _MATH.sub(stash, text)
    rendered = _md.render(protected)
    return re.sub(r"@@MATH(\d+)@@", lambda m: formulas[int(m.group(1))], rendered)


def inline_html(text: str) -> str:
    """Markdown with math for a single paragraph, without the surrounding <p>."""
    html_text = markdown_to_html(text).strip()
    if html_text.startswith("<p>") and html_text.endswith("</p>") and html_text.count("<p>") == 1:
        html_text = html_text[3:-4]
    return html_text


def _source(obj) -> tuple[str, str]:
    """(source code, file path shown to the reader) of a library object.

    Decorated functions (`torch.no_grad()`, `functools.wraps`) are unwrapped first, so the panel shows
    our function and not the decorator's wrapper from torch's files. The path is relative to the package
    (`dlterms/nn/recurrent.py`); a file outside it is named by its base name only, never by the absolute
    path of the machine the site was built on.
    """
    obj = inspect.unwrap(obj)
    try:
        src = inspect.getsource(obj)
        path = inspect.getsourcefile(obj) or ""
    except (TypeError, OSError):
        name = getattr(obj, "__qualname__", type(obj).__name__)
        return f"# source not available for {name}", ""
    path = path.replace("\\", "/")
    m = re.search(r"(dlterms/.*)$", path)
    return src, m.group(1) if m else path.rsplit("/", 1)[-1]


def source_of(dotted: str) -> tuple[str, str]:
    """(source code, file path relative to the package) of a dotted library path."""
    from dlterms.glossary.registry import resolve_code

    return _source(resolve_code(dotted))


def fast_path_of(dotted: str) -> tuple[str, list[tuple[str, str, str]]] | None:
    """For an equations function with a fast path (`dlterms.nn._fastpath.declare`): what the fast path
    saves, and (dotted name, source, file) of each object that runs by default in its place; else None."""
    from dlterms.glossary.registry import resolve_code

    fast = getattr(inspect.unwrap(resolve_code(dotted)), "__fast_path__", None)
    if fast is None:
        return None
    runs = []
    for obj in fast.runs:
        obj = inspect.unwrap(obj)
        src, file = _source(obj)
        runs.append((f"{obj.__module__}.{obj.__qualname__}", src, file))
    return fast.saves, runs


def highlight_python(code: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(code, PythonLexer(), HtmlFormatter(cssclass="highlight", nowrap=False))


def pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="friendly").get_style_defs(".highlight")
