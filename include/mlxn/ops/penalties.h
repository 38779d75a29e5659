// Repetition, presence and frequency penalties applied to logits on the device, so that a decode
// step can penalize, sample and read back one token id without bringing the logits to the host.
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// Penalizes, in place, the logits of tokens that occurred: for each of the first n_valid
/// (token id, count) pairs of row r with 0 <= id < vocab and count > 0, with x = logits[r, id]
/// as f32:
///   x = x > 0 ? x / repetition_penalty : x * repetition_penalty   (transformers, llama.cpp)
///   x = x - (count * frequency_penalty + presence_penalty)         (OpenAI, llama.cpp)
/// computed in f32 and rounded once to the logits' dtype.
/// logits: [rows, vocab] (f32, f16, bf16; vocab < 2^31); token_counts: i32 [rows, n, 2] with
/// 0 <= n_valid <= n. Pairs with an id outside [0, vocab) or a count <= 0 are ignored (so -1 ids
/// can pad a fixed-size buffer); ids within a row must be distinct (a repeated id gives an
/// unspecified result on CUDA). repetition_penalty must be finite and > 0, the others finite.
/// Nothing is dispatched when the penalties are neutral (1, 0, 0) or n_valid is 0.
void apply_penalties(CommandEncoder& encoder, const Buffer& logits, const Buffer& token_counts,
                     std::int64_t n_valid, float repetition_penalty, float presence_penalty,
                     float frequency_penalty);

}  // namespace mlxn::ops
