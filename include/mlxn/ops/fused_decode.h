// The fused decode step: every layer of a Llama-shaped model and its output head for one token,
// in one persistent CUDA launch. One block an SM; one warp of each block streams the block's
// share of every weight of the step, in order, into a shared-memory ring and never waits for
// activations, while 16 warps wait for each product's input (device-memory counters), stage it
// (RMS norm), multiply on the tensor cores (the gate/up product's epilogue forms SiLU(gate) x up),
// and between the q/k/v and o projections run RoPE, the KV-cache append and split-KV attention.
// At batch 1 each of a step's ~300 kernels otherwise leaves the weight stream idle while it
// starts and drains (docs/perf.md, issue 7, step 24 measured the design; step 25 this op).
//
// What it runs (and so what a model must be for it, checked by make_fused_decode_plan):
//   x: the embedded token (bf16). Per layer:
//     qkv = W_qkv rms_norm(x, attn_norm)            (fused q/k/v rows, no bias)
//     q, k = rope(q, k, position)  (Neox pairs, rotary_dim == head_dim == 128)
//     cache[position] = k, v;  attn = softmax(q K^T * attn_scale) V   (GQA, full attention)
//     x += W_o attn
//     x += W_down (silu(g) * u),  [g; u] = W_gate_up rms_norm(x, ffn_norm)
//   logits = W_head rms_norm(x, final_norm)
// Every W is MLX 4-bit, group 64, bf16 scales and biases, in ops::QuantLayout::DecodeTiles, n a
// multiple of 16, k a multiple of kFusedDecodeUnitCodes and at most kFusedDecodeMaxK. The
// arithmetic is the separate ops' (f32 accumulation, bf16 rounding at the same points), so the
// results agree with them to bf16 rounding, not bit for bit (sums run in another order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/ops/quantized_matmul.h"
#include "mlxn/ops/rope.h"

namespace mlxn::ops {

/// A unit, what one bulk copy brings into the ring: 16 rows (one DecodeTiles tile) x 2,048 codes.
inline constexpr std::int64_t kFusedDecodeUnitCodes = 2048;
/// The longest input a product may have (the staged input lives in shared memory).
inline constexpr std::int64_t kFusedDecodeMaxK = 16384;
/// The only head size the attention phase handles (a lane holds 4 of a head's elements).
inline constexpr std::int64_t kFusedDecodeHeadDim = 128;
/// Query heads a KV head may serve (their slices of q and accumulators live in registers).
inline constexpr std::int64_t kFusedDecodeMaxGroup = 4;
/// Blocks a launch may have at most (one an SM): sizes the attention workspace.
inline constexpr std::int64_t kFusedDecodeMaxBlocks = 256;

/// Whether w is a weight the fused step streams: MLX 4-bit, group 64, bf16 scales and biases,
/// DecodeTiles, not stacked, n a multiple of 16, k a multiple of kFusedDecodeUnitCodes and
/// <= kFusedDecodeMaxK. Empty when it is; else why not, in a few words.
std::string fused_decode_weight_problem(const QuantizedWeight& w);

/// Elements (bf16) of the unit-ordered scales of an [n, k] weight: n * k / 32.
std::int64_t fused_decode_scales_elems(std::int64_t n, std::int64_t k);

/// Writes w's scales and biases into `out` (bf16, fused_decode_scales_elems(n, k) elements) in
/// the order a unit reads them: for each tile t (16 rows), unit u (2,048 codes), step s (128
/// codes) and row r of the tile, four bf16: the scales of the step's groups 2 s and 2 s + 1, then
/// their biases, at element ((((t * (k / 2048) + u) * 16 + s) * 16 + r) * 4). Global group of
/// (u, s, j) is u * 32 + 2 s + j. Fails with QuantConfig where fused_decode_weight_problem is not
/// empty (the DecodeTiles layout aside: the scales are the same in either order).
void fused_decode_scales(CommandEncoder& encoder, const QuantizedWeight& w, const Buffer& out);

/// A weight as the fused step reads it: the codes (DecodeTiles) and the unit-ordered scales.
struct FusedDecodeMatrix {
  QuantizedWeight weight;
  Buffer unit_scales;  // bf16 [fused_decode_scales_elems(n, k)], from fused_decode_scales
};

/// One layer's weights and cache.
struct FusedDecodeLayer {
  FusedDecodeMatrix qkv;       // [(n_heads + 2 n_kv_heads) head_dim, hidden]: q rows, k, v
  FusedDecodeMatrix o;         // [hidden, n_heads head_dim]
  FusedDecodeMatrix gate_up;   // [2 intermediate, hidden]: gate rows, then up
  FusedDecodeMatrix down;      // [hidden, intermediate]
  Buffer attn_norm, ffn_norm;  // bf16 [hidden]
  Buffer k_cache, v_cache;     // bf16 [n_kv_heads, capacity, head_dim], head-major
};

/// How the step's products take their inputs (docs/perf.md, issue 7, step 26). The products
/// multiply on int8 tensor cores: each run of 32 input elements is scaled by its largest magnitude
/// / 127 and rounded to int8.
enum class FusedDecodeInputs {
  /// One int8 plane (llama.cpp's q8 activations): the fastest (8B 4-bit on an H200: 528.5 tok/s
  /// against 512.7, docs/perf.md, the sixth session's side by side). Each element moves by up to
  /// 1/254 of its run's largest, where rounding to bf16 (the per-op path's inputs) moves it by up
  /// to 1/256 of itself: several times the noise (FusedDecodeCuda: 3.2-4.9x the per-op logits'
  /// distance from an f32 reference).
  Int8,
  /// Two int8 planes, the second the first's rounding error quantized again: each element moves
  /// by up to 1/64,516 of its run's largest, less than a bf16 rounding of any element above 1/252
  /// of it (FusedDecodeCuda: 1.01-1.06x the per-op logits' distance). Four more mmas and two more
  /// 16-byte loads a 128-code step. The default.
  Int8Pair,
};

/// The model's shape and constants, and how the products take their inputs.
struct FusedDecodeShape {
  std::int64_t hidden = 0;
  std::int64_t n_heads = 0;
  std::int64_t n_kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t intermediate = 0;
  std::int64_t vocab = 0;
  float rms_eps = 1e-5f;
  RopeLayout rope_layout = RopeLayout::Neox;
  FusedDecodeInputs inputs = FusedDecodeInputs::Int8Pair;
};

/// Everything a fused step runs over: a device table of the layers' addresses and a workspace
/// (completion counters, attention partials, the intermediate rows). Made once per model; holds
/// references to every buffer it names, so they outlive it. Not for concurrent steps: one plan's
/// launches must run one after another (one queue).
class FusedDecodePlan {
 public:
  FusedDecodePlan() = default;
  bool valid() const { return table_.valid(); }
  const FusedDecodeShape& shape() const { return shape_; }
  std::int64_t n_layers() const { return static_cast<std::int64_t>(layers_.size()); }
  std::int64_t capacity() const { return capacity_; }
  /// Bytes of device memory the plan added (table, workspace; not the unit scales).
  std::size_t bytes() const;

 private:
  friend FusedDecodePlan make_fused_decode_plan(Device&, const FusedDecodeShape&,
                                                std::vector<FusedDecodeLayer>, FusedDecodeMatrix,
                                                Buffer);
  friend void fused_decode_step(CommandEncoder&, const FusedDecodePlan&, const Buffer&,
                                std::int64_t, const Buffer&, float, float, const Buffer&);
  FusedDecodeShape shape_;
  std::vector<FusedDecodeLayer> layers_;  // keeps the buffers alive
  FusedDecodeMatrix head_;
  Buffer final_norm_;
  std::int64_t capacity_ = 0;
  Buffer table_;      // u8: the device table (ops/fused_decode_params.h)
  Buffer workspace_;  // u8: counters, partials, rows
};

/// Checks that the layers, head and norms fit the fused step (shapes, dtypes, layouts: throws
/// Unsupported naming the first that does not, e.g. "layer 3 o: k 3584 is not a multiple of
/// 2048"; InvalidArgument for inconsistent shapes), uploads the table and allocates the
/// workspace. CUDA only (Unsupported elsewhere).
FusedDecodePlan make_fused_decode_plan(Device& device, const FusedDecodeShape& shape,
                                       std::vector<FusedDecodeLayer> layers, FusedDecodeMatrix head,
                                       Buffer final_norm);

/// One decode step: x (bf16 [1, hidden], the embedded token at `position`; updated in place to
/// the last layer's output) through every layer, k and v appended to each layer's cache at
/// `position` (0 <= position < capacity; the cache holds positions [0, position) already), and
/// the head's logits (bf16 [1, vocab]). inv_freq: f32 [head_dim / 2], RoPE's inverse frequencies
/// (ops::rope_inv_freq), rope_scale its attention scaling; attn_scale multiplies q k^T as given
/// (no default: 0 is 0, unlike the attention ops' 1 / sqrt(head_dim)).
void fused_decode_step(CommandEncoder& encoder, const FusedDecodePlan& plan, const Buffer& x,
                       std::int64_t position, const Buffer& inv_freq, float rope_scale,
                       float attn_scale, const Buffer& logits);

}  // namespace mlxn::ops
