"""MLX affine group quantization in numpy, as MLX's CPU `quantize` computes it, plus the
bfloat16 rounding that MLX applies when it stores scales and biases in the model's dtype.

Layout (what mlx-lm writes): for a weight [..., out, in] quantized with `bits` and `group_size`,
  <module>.weight  uint32 [..., out, in * bits / 32]: the codes of one row form one
                   little-endian bit stream, element j at bits [j*bits, (j+1)*bits), LSB first
                   (3/5/6-bit codes straddle word boundaries);
  <module>.scales  [..., out, in / group_size] in the float dtype (bfloat16 here);
  <module>.biases  the same; a weight is w = scale * q + bias.
"""

import numpy as np

SUPPORTED_BITS = (2, 3, 4, 5, 6, 8)
SUPPORTED_GROUPS = (32, 64, 128)


# ---------------------------------------------------------------------------------------------
# bfloat16 (round to nearest even, as torch and MLX convert float32 -> bfloat16)


def bf16_bits(x):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest, ties to even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    if not np.all(np.isfinite(np.asarray(x, dtype=np.float32))):
        raise ValueError("bf16_bits: non-finite value (the fixtures never hold one)")
    lsb = (u >> np.uint64(16)) & np.uint64(1)
    rounded = (u + np.uint64(0x7FFF) + lsb) >> np.uint64(16)
    return rounded.astype(np.uint16)


def bf16_to_f32(bits):
    """uint16 bfloat16 bit patterns -> float32 values (exact)."""
    u = np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)
    return u.view(np.float32)


def bf16_round(x):
    """float32 values rounded to the nearest bfloat16, returned as float32."""
    return bf16_to_f32(bf16_bits(x))


# ---------------------------------------------------------------------------------------------
# Quantization


def check_params(bits, group_size, in_dim, what="weight"):
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"{what}: bits {bits} not in {SUPPORTED_BITS}")
    if group_size not in SUPPORTED_GROUPS:
        raise ValueError(f"{what}: group_size {group_size} not in {SUPPORTED_GROUPS}")
    if in_dim % group_size != 0 or (in_dim * bits) % 32 != 0:
        raise ValueError(
            f"{what}: input size {in_dim} is not a multiple of group {group_size} "
            f"(or does not pack into whole uint32 words at {bits} bits)"
        )


def affine_quantize(w, bits, group_size):
    """Quantizes w [..., in] (float32) per group of `group_size` consecutive inputs.

    Returns (codes uint8 [..., in], scales float32 [..., in/g], biases float32 [..., in/g]).
    Follows MLX's CPU kernel step by step, in float32: the extreme of larger magnitude (the
    "edge") becomes code 0 exactly (bias = edge), and the scale is re-derived from it so that
    zero is also representable when the edge rounds to a non-zero code. The scale is negative
    when the edge is the maximum. Scales and biases are returned unrounded; the caller stores
    them in bfloat16.
    """
    w = np.asarray(w, dtype=np.float32)
    in_dim = w.shape[-1]
    check_params(bits, group_size, in_dim)
    groups = w.reshape(-1, group_size)
    n_bins = np.float32((1 << bits) - 1)
    eps = np.float32(1e-7)
    w_max = groups.max(axis=1)
    w_min = groups.min(axis=1)
    mask = np.abs(w_min) > np.abs(w_max)
    scale = np.maximum((w_max - w_min) / n_bins, eps)
    scale = np.where(mask, scale, -scale).astype(np.float32)
    edge = np.where(mask, w_min, w_max).astype(np.float32)
    q0 = np.rint(edge / scale).astype(np.float32)
    nonzero = q0 != 0
    safe_q0 = np.where(nonzero, q0, np.float32(1)).astype(np.float32)
    scale = np.where(nonzero, edge / safe_q0, scale).astype(np.float32)
    bias = np.where(nonzero, edge, np.float32(0)).astype(np.float32)
    q = np.rint((groups - bias[:, None]) / scale[:, None])
    q = np.clip(q, np.float32(0), n_bins).astype(np.uint8)
    lead = w.shape[:-1]
    return (
        q.reshape(w.shape),
        scale.reshape(lead + (in_dim // group_size,)),
        bias.reshape(lead + (in_dim // group_size,)),
    )


def affine_dequantize(codes, scales, biases, group_size):
    """w = scale * q + bias in float32; codes [..., in], scales/biases [..., in/g] (float32)."""
    codes = np.asarray(codes)
    in_dim = codes.shape[-1]
    q = codes.reshape(-1, in_dim // group_size, group_size).astype(np.float32)
    s = np.asarray(scales, dtype=np.float32).reshape(-1, in_dim // group_size, 1)
    b = np.asarray(biases, dtype=np.float32).reshape(-1, in_dim // group_size, 1)
    return (s * q + b).astype(np.float32).reshape(codes.shape)


# ---------------------------------------------------------------------------------------------
# Packing: one little-endian bit stream per row, LSB first, in uint32 words


def pack_codes(codes, bits):
    """codes uint8 [..., n] (each < 2**bits) -> uint32 [..., n * bits / 32]."""
    codes = np.asarray(codes, dtype=np.uint8)
    n = codes.shape[-1]
    if (n * bits) % 32 != 0:
        raise ValueError(f"pack_codes: {n} codes of {bits} bits do not fill whole words")
    if codes.size and int(codes.max()) >= (1 << bits):
        raise ValueError(f"pack_codes: a code does not fit in {bits} bits")
    flat = codes.reshape(-1, n)
    # Bit k of element j lands at stream position j * bits + k.
    stream = (flat[:, :, None] >> np.arange(bits, dtype=np.uint8)) & np.uint8(1)
    stream = stream.reshape(flat.shape[0], n * bits)
    packed = np.packbits(stream, axis=1, bitorder="little")  # byte i holds stream bits 8i..8i+7
    words = np.ascontiguousarray(packed).view("<u4").astype(np.uint32)
    return words.reshape(codes.shape[:-1] + (n * bits // 32,))


def unpack_codes(words, bits, n):
    """Inverse of pack_codes: uint32 [..., n * bits / 32] -> uint8 [..., n]."""
    words = np.asarray(words, dtype=np.uint32)
    flat = np.ascontiguousarray(words.reshape(-1, words.shape[-1]).astype("<u4")).view(np.uint8)
    stream = np.unpackbits(flat, axis=1, bitorder="little")[:, : n * bits]
    stream = stream.reshape(-1, n, bits).astype(np.uint32)
    codes = (stream << np.arange(bits, dtype=np.uint32)).sum(axis=2)
    return codes.astype(np.uint8).reshape(words.shape[:-1] + (n,))


# ---------------------------------------------------------------------------------------------
# One module, end to end


def quantize_module(w, bits, group_size):
    """Quantizes a float32 weight [..., out, in] the way mlx-lm stores it in a bfloat16 model.

    Returns (packed uint32, scales_bf16_bits uint16, biases_bf16_bits uint16, dequantized float32).
    The dequantized weight is computed from the codes and the bfloat16-rounded scales and
    biases, i.e. from exactly what is stored.
    """
    codes, scales, biases = affine_quantize(w, bits, group_size)
    s_bits = bf16_bits(scales)
    b_bits = bf16_bits(biases)
    deq = affine_dequantize(codes, bf16_to_f32(s_bits), bf16_to_f32(b_bits), group_size)
    return pack_codes(codes, bits), s_bits, b_bits, deq
