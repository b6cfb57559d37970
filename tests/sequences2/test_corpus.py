"""The standard-library docstring corpus: large, English, and the same whatever the caller imported."""

import torch  # noqa: F401 - imported on purpose: torch patches nothing the corpus may see

from dlterms.data import corpus


def test_corpus_size_and_content():
    words = corpus.words()
    assert len(words) >= 200_000
    assert {"the", "file", "string", "return"} <= set(words[:20_000])
    assert len(corpus.sentences()) >= 5_000
    assert len(corpus.varied_sentences(250)) == 250


def test_corpus_does_not_depend_on_imports():
    import json
    import subprocess
    import sys

    code = "import json, sys; from dlterms.data import corpus; sys.stdout.write(json.dumps(corpus.docstrings()[:50]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=300)
    assert json.loads(out.stdout) == corpus.docstrings()[:50]
