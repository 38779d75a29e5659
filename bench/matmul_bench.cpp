// Matmul at Llama-3-8B shapes: M = 1 mat-vec (GB/s of weight bytes read; H100 streaming-read
// ceiling 3.04 TB/s, see docs/perf.md) and M = 512 prefill (TFLOP/s; bf16 GEMM ceiling ~795),
// for bf16, MLX affine 4/8-bit (group 64, bf16 scales), and GGML Q4_0, Q8_0, Q4_K, Q6_K.
// Args: backend (0 = CPU, 1 = CUDA), format, shape, m. CPU runs M = 1 only (the oracle is slow).
#include <benchmark/benchmark.h>

#include <string>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/io/ggml_types.h"
#include "mlxn/ops/ggml_matmul.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/quantized_matmul.h"

namespace {

using namespace mlxn;

struct WeightShape {
  std::int64_t k, n;  // in -> out
};
// q/o, k/v, gate/up, down, lm head.
constexpr WeightShape kShapes[] = {
    {4096, 4096}, {4096, 1024}, {4096, 14336}, {14336, 4096}, {4096, 128256}};

enum Format { kBf16, kMlx4, kMlx8, kQ4_0, kQ8_0, kQ4_K, kQ6_K, kFormatCount };
const char* const kFormatNames[] = {"bf16", "mlx4g64", "mlx8g64", "q4_0", "q8_0", "q4_k", "q6_k"};

io::GgmlType ggml_type(int f) {
  switch (f) {
    case kQ4_0:
      return io::GgmlType::Q4_0;
    case kQ8_0:
      return io::GgmlType::Q8_0;
    case kQ4_K:
      return io::GgmlType::Q4_K;
    default:
      return io::GgmlType::Q6_K;
  }
}

// Weights are left zero-filled: the kernels' cost does not depend on the values.
void BM_Matmul(benchmark::State& state) {
  const Backend backend = state.range(0) == 0 ? Backend::Cpu : Backend::Cuda;
  const int format = static_cast<int>(state.range(1));
  const WeightShape s = kShapes[state.range(2)];
  const std::int64_t m = state.range(3);
  if (backend == Backend::Cuda && !Device::cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  Device device = Device::open(backend);
  state.SetLabel(std::string(backend_name(backend)) + " " + kFormatNames[format] + " k=" +
                 std::to_string(s.k) + " n=" + std::to_string(s.n) + " m=" + std::to_string(m));
  Buffer x = device.alloc(DType::BF16, {m, s.k});
  Buffer out = device.alloc(DType::BF16, {m, s.n});
  Buffer w;
  ops::QuantizedWeight q;
  std::int64_t weight_bytes = 0;
  if (format == kBf16) {
    w = device.alloc(DType::BF16, {s.n, s.k});
    weight_bytes = s.n * s.k * 2;
  } else if (format == kMlx4 || format == kMlx8) {
    q.bits = format == kMlx4 ? 4 : 8;
    q.group_size = 64;
    q.packed = device.alloc(DType::U32, {s.n, s.k * q.bits / 32});
    q.scales = device.alloc(DType::BF16, {s.n, s.k / 64});
    q.biases = device.alloc(DType::BF16, {s.n, s.k / 64});
    weight_bytes = q.packed.size_bytes() + q.scales.size_bytes() + q.biases.size_bytes();
  } else {
    const auto row = static_cast<std::int64_t>(io::ggml_row_size(ggml_type(format), s.k));
    w = device.alloc(DType::U8, {s.n, row});
    weight_bytes = s.n * row;
  }
  CommandEncoder enc = device.command_encoder();
  const auto run = [&] {
    if (format == kBf16) {
      ops::matmul(enc, x, w, out);
    } else if (format == kMlx4 || format == kMlx8) {
      ops::quantized_matmul(enc, x, q, out);
    } else {
      ops::ggml_matmul(enc, x, w, ggml_type(format), out);
    }
  };
  run();  // warm-up: kernel creation, cuBLASLt handle and algorithm choice
  enc.commit_and_wait();
  // Encode several runs per wait so the GPU time dominates the host round trip.
  const int reps = backend == Backend::Cuda ? 20 : 1;
  for (auto _ : state) {
    for (int i = 0; i < reps; ++i) run();
    enc.commit_and_wait();
  }
  if (m == 1) {
    state.counters["weight_bytes/s"] = benchmark::Counter(
        static_cast<double>(weight_bytes) * reps, benchmark::Counter::kIsIterationInvariantRate,
        benchmark::Counter::kIs1000);
  } else {
    state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(m * s.n * s.k) * reps,
                                                  benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
  }
}

void matmul_args(benchmark::internal::Benchmark* b) {
  for (int backend : {0, 1}) {
    for (int f = 0; f < kFormatCount; ++f) {
      for (int shape = 0; shape < 5; ++shape) b->Args({backend, f, shape, 1});
    }
  }
  for (int f = 0; f < kFormatCount; ++f) {
    for (int shape = 0; shape < 5; ++shape) b->Args({1, f, shape, 512});
  }
}
BENCHMARK(BM_Matmul)->Apply(matmul_args)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
