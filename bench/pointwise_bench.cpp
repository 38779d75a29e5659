// Bandwidth of the activation, norm, RoPE and embedding ops at Llama-3-8B shapes (hidden 4096,
// 32 heads, 8 KV heads, head dim 128, FFN 14336, vocab 128256), for 1 token (decode) and 512
// (prefill). Arg 0: 0 = CPU, 1 = CUDA (skipped without a GPU); Arg 1: tokens. Counter "bytes":
// bytes per second the op must move (compare with the H100's 3.01 TB/s copy ceiling).
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "bench_loop.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/ops/activations.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/embedding.h"
#include "mlxn/ops/norms.h"
#include "mlxn/ops/rope.h"

namespace {

using namespace mlxn;

constexpr std::int64_t kHidden = 4096, kHeads = 32, kKvHeads = 8, kHeadDim = 128;
constexpr std::int64_t kFfn = 14336, kVocab = 128256;

bool open_backend(benchmark::State& state, Device& device) {
  const Backend b = state.range(0) == 0 ? Backend::Cpu : Backend::Cuda;
  if (b == Backend::Cuda && !Device::cuda_available()) {
    state.SkipWithError("no CUDA device");
    return false;
  }
  device = Device::open(b);
  state.SetLabel(backend_name(b));
  return true;
}

// Times `encode` (one op call). On CUDA, 20 calls are replayed per iteration as one graph
// (bench_loop.h), so the time is the GPU's, not the host's launch cost. `bytes`: what one call
// must move. Working sets under ~50 MB may stay in the H100's L2 between calls (docs/perf.md).
template <class Encode>
void run(benchmark::State& state, Device& device, double bytes, Encode encode) {
  const int reps = device.backend() == Backend::Cuda ? 20 : 1;
  mlxn::bench::run_calls(state, device, reps, [&](CommandEncoder& enc, int) { encode(enc); });
  // Shown with SI prefixes as bytes per second ("2.1T/s"); compare with the 3.01 TB/s ceiling.
  state.counters["bytes"] =
      benchmark::Counter(bytes * reps, benchmark::Counter::kIsIterationInvariantRate);
}

constexpr double kBf16 = 2.0;

// The copy ceiling that the other rows' bandwidths (and the mat-vec rows of matmul_bench) are
// read against, measured in the same run: a bf16-to-bf16 ops::cast (a plain copy: read + write
// counted) of 256 MiB, far past the 50 MB L2. Arg 1 is unused (the tokens of the other rows).
void BM_CopyCeiling(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t n = (std::int64_t{256} << 20) / 2;
  Buffer in = device.alloc(DType::BF16, {n}), out = device.alloc(DType::BF16, {n});
  run(state, device, 2.0 * n * kBf16, [&](CommandEncoder& e) { ops::cast(e, in, out); });
}

void BM_SiluMul(benchmark::State& state) {  // SwiGLU on [tokens, 14336]
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t n = state.range(1) * kFfn;
  Buffer g = device.alloc(DType::BF16, {n}), u = device.alloc(DType::BF16, {n});
  Buffer o = device.alloc(DType::BF16, {n});
  run(state, device, 3.0 * n * kBf16, [&](CommandEncoder& e) { ops::silu_mul(e, g, u, o); });
}

void BM_GeluTanhMul(benchmark::State& state) {  // GeGLU (Gemma) on [tokens, 14336]
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t n = state.range(1) * kFfn;
  Buffer g = device.alloc(DType::BF16, {n}), u = device.alloc(DType::BF16, {n});
  Buffer o = device.alloc(DType::BF16, {n});
  run(state, device, 3.0 * n * kBf16, [&](CommandEncoder& e) { ops::gelu_mul(e, g, u, o); });
}

void BM_Softcap(benchmark::State& state) {  // final-logit softcap on [tokens, vocab], in place
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t n = state.range(1) * kVocab;
  Buffer x = device.alloc(DType::F32, {n});
  run(state, device, 2.0 * n * 4, [&](CommandEncoder& e) { ops::softcap(e, x, 30.0f, x); });
}

void BM_AddRmsNorm(benchmark::State& state) {  // residual add + RMSNorm on [tokens, 4096]
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t t = state.range(1);
  Buffer x = device.alloc(DType::BF16, {t, kHidden}), r = device.alloc(DType::BF16, {t, kHidden});
  Buffer w = device.alloc(DType::BF16, {kHidden}), y = device.alloc(DType::BF16, {t, kHidden});
  // Reads x, residual; writes h (in place over residual) and y.
  run(state, device, 4.0 * t * kHidden * kBf16,
      [&](CommandEncoder& e) { ops::add_rms_norm(e, x, r, w, r, y, 1e-5f); });
}

void BM_LayerNorm(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t t = state.range(1);
  Buffer x = device.alloc(DType::BF16, {t, kHidden}), y = device.alloc(DType::BF16, {t, kHidden});
  Buffer w = device.alloc(DType::BF16, {kHidden}), b = device.alloc(DType::BF16, {kHidden});
  run(state, device, 2.0 * t * kHidden * kBf16,
      [&](CommandEncoder& e) { ops::layer_norm(e, x, w, b, y, 1e-5f); });
}

void BM_QkNorm(benchmark::State& state) {  // per-head RMSNorm of Q: [tokens, 32, 128]
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t t = state.range(1);
  Buffer q = device.alloc(DType::BF16, {t, kHeads, kHeadDim});
  Buffer w = device.alloc(DType::BF16, {kHeadDim});
  run(state, device, 2.0 * q.numel() * kBf16,
      [&](CommandEncoder& e) { ops::qk_norm(e, q, w, q, 1e-6f); });
}

void BM_Rope(
    benchmark::State& state) {  // NeoX RoPE in place on Q [tokens, 32, 128] and K [.., 8, ..]
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t t = state.range(1);
  Buffer q = device.alloc(DType::BF16, {t, kHeads, kHeadDim});
  Buffer k = device.alloc(DType::BF16, {t, kKvHeads, kHeadDim});
  Buffer pos = device.alloc(DType::I32, {t});
  std::vector<std::int32_t> p(t);
  for (std::int64_t i = 0; i < t; ++i) p[i] = static_cast<std::int32_t>(1000 + i);
  pos.write(p);
  ops::RopeConfig cfg;
  cfg.scaling = ops::RopeScaling::Llama3;
  cfg.theta = 500000.0;
  cfg.rotary_dim = kHeadDim;
  cfg.factor = 8.0;
  cfg.original_max_position_embeddings = 8192;
  const ops::RopeTable table = ops::rope_inv_freq(cfg, t);
  Buffer freq = device.alloc(DType::F32, {kHeadDim / 2});
  freq.write(table.inv_freq);
  run(state, device, 2.0 * (q.numel() + k.numel()) * kBf16, [&](CommandEncoder& e) {
    ops::rope(e, q, pos, freq, q, ops::RopeLayout::Neox);
    ops::rope(e, k, pos, freq, k, ops::RopeLayout::Neox);
  });
}

void BM_Embedding(benchmark::State& state) {  // bf16 table [128256, 4096]
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t t = state.range(1);
  Buffer table = device.alloc(DType::BF16, {kVocab, kHidden});
  Buffer ids = device.alloc(DType::I32, {t});
  std::vector<std::int32_t> v(t);
  for (std::int64_t i = 0; i < t; ++i) v[i] = static_cast<std::int32_t>((i * 7919) % kVocab);
  ids.write(v);
  Buffer out = device.alloc(DType::BF16, {t, kHidden});
  run(state, device, 2.0 * t * kHidden * kBf16,
      [&](CommandEncoder& e) { ops::embedding(e, table, ids, out, 64.0f); });
}

void BM_EmbeddingQ4(benchmark::State& state) {  // MLX 4-bit, group 64, bf16 scales
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t t = state.range(1);
  ops::QuantizedEmbedding q;
  q.bits = 4;
  q.group_size = 64;
  q.packed = device.alloc(DType::U32, {kVocab, kHidden * 4 / 32});
  q.scales = device.alloc(DType::BF16, {kVocab, kHidden / 64});
  q.biases = device.alloc(DType::BF16, {kVocab, kHidden / 64});
  Buffer ids = device.alloc(DType::I32, {t});
  std::vector<std::int32_t> v(t);
  for (std::int64_t i = 0; i < t; ++i) v[i] = static_cast<std::int32_t>((i * 7919) % kVocab);
  ids.write(v);
  Buffer out = device.alloc(DType::BF16, {t, kHidden});
  const double row_bytes = kHidden / 2.0 + 2.0 * (kHidden / 64) * kBf16;
  run(state, device, t * (row_bytes + kHidden * kBf16),
      [&](CommandEncoder& e) { ops::embedding_quantized(e, q, ids, out); });
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int backend : {0, 1}) {
    for (int tokens : {1, 512}) b->Args({backend, tokens});
  }
  b->UseRealTime();
}

BENCHMARK(BM_CopyCeiling)->Args({1, 1})->UseRealTime();
BENCHMARK(BM_SiluMul)->Apply(shapes);
BENCHMARK(BM_GeluTanhMul)->Apply(shapes);
BENCHMARK(BM_Softcap)->Apply(shapes);
BENCHMARK(BM_AddRmsNorm)->Apply(shapes);
BENCHMARK(BM_LayerNorm)->Apply(shapes);
BENCHMARK(BM_QkNorm)->Apply(shapes);
BENCHMARK(BM_Rope)->Apply(shapes);
BENCHMARK(BM_Embedding)->Apply(shapes);
BENCHMARK(BM_EmbeddingQ4)->Apply(shapes);

}  // namespace
