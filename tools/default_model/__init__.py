"""Parts of tools/train_default_model.py, which trains mlxn's bundled default model.

corpus.py, card.py and export.py need only the standard library and numpy (export.py reuses
tools/parity for the MLX layout); bpe.py needs `tokenizers` and jinja2; training.py needs torch
and transformers.
"""
