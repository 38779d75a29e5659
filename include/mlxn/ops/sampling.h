// Row reductions for decoding: argmax, top-k, and token sampling on the device, so that a decode
// step reads back one i32 per sequence.
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// Per row the lowest index of the maximum and the maximum as f32. x: [rows, cols] (f32, f16,
/// bf16; cols < 2^31); idx: i32 [rows]; val: f32 [rows]. NaN counts as larger than +inf (as
/// torch.argmax), -0 equals +0.
void argmax(CommandEncoder& encoder, const Buffer& x, const Buffer& idx, const Buffer& val);

/// Per row the k largest values in descending order, ties by lower index (NaN above +inf, -0
/// equal to +0 and returned as +0). x: [rows, cols] (f32, f16, bf16); values: f32 [rows, k];
/// indices: i32 [rows, k]; 1 <= k <= min(cols, 1024).
void top_k(CommandEncoder& encoder, const Buffer& x, std::int64_t k, const Buffer& values,
           const Buffer& indices);

/// Per-row sampling settings, one element per row of the logits (device buffers, so a batch of
/// sequences with different settings is one dispatch and a graph can replay it).
struct SamplingRowParams {
  Buffer temperature;  // f32 [rows]; <= 0 (or NaN) means greedy
  Buffer top_k;        // i32 [rows]; <= 0 or >= vocab disables
  Buffer top_p;        // f32 [rows]; >= 1 or <= 0 (or NaN) disables
  Buffer min_p;        // f32 [rows]; <= 0 (or NaN) disables; values above 1 act as 1
};

/// Draws one token per row: tokens[r] from logits[r, :] with settings params[r] and the
/// caller's uniform u[r] in [0, 1) (the host RNG makes it, so runs are reproducible and the
/// backends agree). logits: [rows, vocab] (f32, f16, bf16; vocab < 2^31); u: f32 [rows];
/// tokens: i32 [rows].
///
/// The algorithm (the order in which transformers applies its logits warpers), per row, with
/// x_i the logit as f32:
///  1. Greedy: if temperature <= 0, or max x is not finite, the token is argmax x (as argmax()).
///  2. Order: rank the tokens by x descending, ties by lower index (order_key order). Every
///     cut below keeps a prefix of this order. With l_i = x_i / temperature (f32) and
///     w_i = exp(l_i - max l) (so the top token has w = 1), W(n) is the sum of w over the first
///     n ranks.
///  3. top-k: n = top_k if 0 < top_k < vocab, else vocab.
///  4. top-p: if 0 < top_p < 1, n = min(n, smallest m >= 1 with W(m) >= top_p * W(n)), i.e. a
///     token is kept while the mass ranked before it is below top_p (transformers' TopP).
///  5. min-p: if min_p > 0, n = min(n, number of tokens with w_i >= min(min_p, 1)), i.e. a token
///     is dropped when its probability is below min_p times the top probability.
///  6. Draw: the token at rank r = min(n - 1, number of ranks j < n with W(j + 1) <= u * W(n)),
///     the inverse CDF over the kept tokens in rank order.
/// Backends sum in different orders, so a u (or top_p) within float rounding of a cumulative
/// boundary may pick a neighbouring rank; away from boundaries CPU and CUDA agree exactly.
/// NaN logits give an unspecified token.
void sample(CommandEncoder& encoder, const Buffer& logits, const SamplingRowParams& params,
            const Buffer& u, const Buffer& tokens);

}  // namespace mlxn::ops
