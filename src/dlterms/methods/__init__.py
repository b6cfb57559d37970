"""Techniques that are not layers (PCA, t-SNE, distillation, MAML, pruning, ...): one module each."""
