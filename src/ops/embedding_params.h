// Parameter structs of the embedding lookups, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include "ops/op_params.h"

#include <cstdint>

namespace mlxn::ops {

/// embedding: out[t, :] = table[ids[t], :] * scale. Bindings: table [vocab, hidden],
/// ids (i32 [n_tokens]), out [n_tokens, hidden]. Spec: dtype (table and out).
/// An id outside [0, vocab) fails the command buffer (CUDA: kStatusEmbeddingIdOutOfRange with
/// info = the token index); the kernel never reads outside the table.
struct EmbeddingParams {
  std::int64_t n_tokens;
  std::int64_t vocab;
  std::int64_t hidden;
  float scale;
};

/// embedding_quantized: out[t, j] = (scales[id, g] * q + biases[id, g]) * scale with id = ids[t],
/// g = j / group_size and q = bits [j * bits, (j + 1) * bits) of row id's LSB-first bit stream
/// (little-endian u32 words). Bindings: packed (u32 [vocab, hidden * bits / 32]), scales, biases
/// ([vocab, hidden / group_size]), ids, out ([n_tokens, hidden]). Spec: dtype (out),
/// scale_dtype (scales and biases). hidden is a multiple of group_size (32, 64 or 128).
struct EmbeddingQuantizedParams {
  std::int64_t n_tokens;
  std::int64_t vocab;
  std::int64_t hidden;
  std::int32_t bits;  // 2, 3, 4, 5, 6 or 8
  std::int32_t group_size;
  float scale;
};

/// Status code the CUDA embedding kernels write when an id is out of range (op_params.h's
/// StatusCode holds 0 and 1).

}  // namespace mlxn::ops
