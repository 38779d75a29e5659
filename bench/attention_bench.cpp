// Attention at Llama-3-8B shape (32 heads, 8 KV heads, head dim 128, bf16): decode over the KV
// cache (GB/s of cache read) and causal prefill (TFLOP/s), plus KV-cache append of one prefill.
// Arg 0 = CPU, 1 = CUDA (reported as skipped where no GPU exists); arg 1 = context / tokens.
// Counters are rates with SI prefixes: bytes/s=1.5T/s is 1.5 TB/s; FLOP/s=200T/s, 200 TFLOP/s.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench_loop.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/ops/attention.h"
#include "mlxn/ops/kv_cache.h"

namespace {

using namespace mlxn;

constexpr std::int64_t kHeads = 32, kKvHeads = 8, kDim = 128;
// GPU work runs this many times per benchmark iteration, replayed as one graph (bench_loop.h).
constexpr int kCudaRepeats = 20;

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

int repeats(const Device& device) {
  return device.backend() == Backend::Cuda ? kCudaRepeats : 1;
}

// Random-ish non-zero bf16 contents (the values do not matter for speed, only that they are
// finite).
void fill(Buffer& b) {
  std::vector<std::uint16_t> v(b.numel());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0x3c00 + (i * 37 % 512);  // ~[0.0078, 0.03)
  b.write(v);
}

// One decode step at context state.range(1): reads K and V of every cached position once.
void BM_AttentionDecode(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t ctx = state.range(1);
  Buffer q = device.alloc(DType::BF16, {kHeads, kDim});
  Buffer out = device.alloc(DType::BF16, {kHeads, kDim});
  const double bytes = 2.0 * kKvHeads * ctx * kDim * 2;  // K + V, bf16
  // Each layer of a model step reads its own cache: rotate over copies so HBM, not L2, is read.
  const int copies =
      device.backend() == Backend::Cuda ? mlxn::bench::copies_to_defeat_l2(bytes) : 1;
  std::vector<Buffer> ks, vs;
  for (int c = 0; c < copies; ++c) {
    ks.push_back(device.alloc(DType::BF16, {kKvHeads, ctx, kDim}));
    vs.push_back(device.alloc(DType::BF16, {kKvHeads, ctx, kDim}));
    fill(ks.back());
    fill(vs.back());
  }
  fill(q);
  // A reused workspace, as an engine would keep one: otherwise every step allocates its own.
  ops::DecodeOptions options;
  options.workspace =
      device.alloc(DType::F32, {ops::attention_decode_workspace_elems(kHeads, kDim, 1024)});
  const int n = std::max(copies, repeats(device));
  mlxn::bench::run_calls(state, device, n, [&](CommandEncoder& enc, int i) {
    ops::attention_decode(enc, q, ks[i % copies], vs[i % copies], ctx, out, options);
  });
  state.counters["copies"] = copies;
  state.counters["bytes/s"] =
      benchmark::Counter(bytes * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionDecode)
    ->ArgsProduct({{0, 1}, {128, 1024, 4096, 32768}})
    ->ArgNames({"cuda", "ctx"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Causal prefill of state.range(1) tokens over their own fresh K/V.
void BM_AttentionPrefill(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t n_tok = state.range(1);
  if (device.backend() == Backend::Cpu && n_tok > 512) {
    state.SkipWithError("the CPU oracle is too slow for this size");
    return;
  }
  Buffer q = device.alloc(DType::BF16, {n_tok, kHeads, kDim});
  Buffer out = device.alloc(DType::BF16, {n_tok, kHeads, kDim});
  Buffer k = device.alloc(DType::BF16, {n_tok, kKvHeads, kDim});
  Buffer v = device.alloc(DType::BF16, {n_tok, kKvHeads, kDim});
  fill(q);
  fill(k);
  fill(v);
  const int n = device.backend() == Backend::Cuda ? 4 : 1;
  mlxn::bench::run_calls(state, device, n, [&](CommandEncoder& enc, int) {
    ops::attention_prefill(enc, q, k, v, out);
  });
  // Q.K^T and P.V, 2 FLOP per multiply-add, over the causal half (n (n + 1) / 2 pairs).
  const double flops = 4.0 * kHeads * kDim * (double(n_tok) * (n_tok + 1) / 2);
  state.counters["FLOP/s"] =
      benchmark::Counter(flops * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionPrefill)
    ->ArgsProduct({{0, 1}, {512, 4096}})
    ->ArgNames({"cuda", "tokens"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Appending a 512-token prefill's K/V (bf16) to a bf16 cache: GB/s of read + write.
void BM_KvCacheAppend(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t n_tok = state.range(1), capacity = 8192;
  Buffer k = device.alloc(DType::BF16, {n_tok, kKvHeads, kDim});
  Buffer v = device.alloc(DType::BF16, {n_tok, kKvHeads, kDim});
  Buffer kc = device.alloc(DType::BF16, {kKvHeads, capacity, kDim});
  Buffer vc = device.alloc(DType::BF16, {kKvHeads, capacity, kDim});
  Buffer pos = device.alloc(DType::I32, {n_tok});
  std::vector<std::int32_t> p(n_tok);
  for (std::int64_t i = 0; i < n_tok; ++i) p[i] = static_cast<std::int32_t>(100 + i);
  pos.write(p);
  const int n = repeats(device);
  mlxn::bench::run_calls(state, device, n, [&](CommandEncoder& enc, int) {
    ops::kv_cache_append(enc, k, v, pos, kc, vc);
  });
  const double bytes = 2.0 * 2 * n_tok * kKvHeads * kDim * 2;  // read + write of K and V
  state.counters["bytes/s"] =
      benchmark::Counter(bytes * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_KvCacheAppend)
    ->ArgsProduct({{0, 1}, {1, 512}})
    ->ArgNames({"cuda", "tokens"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
