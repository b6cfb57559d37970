"""Offline data: bundled and generated datasets (digits, MNIST-1D, toy sets, a glyph set rendered from
fonts), scalers, augmentation, samplers, tokenizers."""
