// Decode-time row ops over Llama-3-8B's vocabulary (128256) at batch 1 and 32: softmax, argmax,
// top-k (k = 50) and sample (top-k 50, top-p 0.9, min-p 0.05). GB/s counts the minimum traffic
// (logits read once, softmax output written once; the counter is bytes/s). Arg 0: 0 = CPU, 1 =
// CUDA; arg 1: rows.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "bench_loop.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/ops/sampling.h"
#include "mlxn/ops/softmax.h"

namespace {

using namespace mlxn;

constexpr std::int64_t kVocab = 128256;

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

Buffer random_logits(Device& device, std::int64_t rows) {
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(rows * kVocab);
  for (auto& x : v) x = dist(rng);
  Buffer b = device.alloc(DType::F32, {rows, kVocab});
  b.write(v);
  return b;
}

// Runs `encode` `batch` times per iteration (CUDA: replayed as one graph, bench_loop.h) and
// reports GB/s of `bytes` per call.
template <class Encode>
void run(benchmark::State& state, Device& device, double bytes, Encode encode) {
  const int batch = state.range(0) == 0 ? 1 : 20;
  mlxn::bench::run_calls(state, device, batch, [&](CommandEncoder& e, int) { encode(e); });
  state.counters["GB/s"] =
      benchmark::Counter(bytes * batch, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["calls/s"] =
      benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Softmax(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t rows = state.range(1);
  Buffer x = random_logits(device, rows);
  Buffer out = device.alloc(DType::F32, {rows, kVocab});
  run(state, device, 8.0 * rows * kVocab, [&](CommandEncoder& e) { ops::softmax(e, x, out); });
}

void BM_Argmax(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t rows = state.range(1);
  Buffer x = random_logits(device, rows);
  Buffer idx = device.alloc(DType::I32, {rows}), val = device.alloc(DType::F32, {rows});
  run(state, device, 4.0 * rows * kVocab, [&](CommandEncoder& e) { ops::argmax(e, x, idx, val); });
}

void BM_TopK50(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t rows = state.range(1);
  Buffer x = random_logits(device, rows);
  Buffer v = device.alloc(DType::F32, {rows, 50}), i = device.alloc(DType::I32, {rows, 50});
  run(state, device, 4.0 * rows * kVocab, [&](CommandEncoder& e) { ops::top_k(e, x, 50, v, i); });
}

void BM_Sample(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  const std::int64_t rows = state.range(1);
  Buffer x = random_logits(device, rows);
  auto filled = [&](DType dt, auto value) {
    Buffer b = device.alloc(dt, {rows});
    b.write(std::vector<decltype(value)>(rows, value));
    return b;
  };
  const ops::SamplingRowParams p{filled(DType::F32, 0.8f), filled(DType::I32, std::int32_t{50}),
                                 filled(DType::F32, 0.9f), filled(DType::F32, 0.05f)};
  Buffer u = filled(DType::F32, 0.37f);
  Buffer tokens = device.alloc(DType::I32, {rows});
  run(state, device, 4.0 * rows * kVocab,
      [&](CommandEncoder& e) { ops::sample(e, x, p, u, tokens); });
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int backend : {0, 1}) {
    for (int rows : {1, 32}) b->Args({backend, rows});
  }
  b->UseRealTime();
}

BENCHMARK(BM_Softmax)->Apply(Shapes);
BENCHMARK(BM_Argmax)->Apply(Shapes);
BENCHMARK(BM_TopK50)->Apply(Shapes);
BENCHMARK(BM_Sample)->Apply(Shapes);

}  // namespace
