"""Experiments, one module per term under experiments/<area>/; see dlterms.run for the contract."""
