"""Models the experiments train, built from dlterms.nn layers."""
