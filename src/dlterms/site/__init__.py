"""The website: a static site built from the glossary entries and saved results (`build`), and a
small loopback server that adds question search and experiment runs (`server`)."""
