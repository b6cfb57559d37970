"""Offline data: bundled and generated datasets, scalers, augmentation, samplers, tokenizers."""
