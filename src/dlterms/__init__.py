"""dlterms: an executable deep-learning glossary."""

__version__ = "0.1.0"
