"""Helpers of tools/make_parity_fixtures.py: numpy-only writers and quantizers (safetensors,
MLX affine quantization, GGUF) and the tiny-model family definitions.

Everything except families.py runs without torch or transformers, so it can be checked on a
machine that only has numpy (see selftest.py).
"""
