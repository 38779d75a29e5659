// Measures how close one persistent kernel gets to the read bandwidth on the mat-vec chain of a
// Llama-3-8B decode step (issue 7, docs/perf.md step 24): 32 layers of qkv (6144 x 4096), o
// (4096 x 4096), gate/up (28672 x 4096) and down (4096 x 14336), then the head (128256 x 4096),
// rows x columns, MLX affine 4-bit, group 64, bf16 scales and biases. Each product's input is
// the output of the one before: RMS-normalized before qkv, gate/up and the head; SiLU(gate) x up
// before down; o reads the first 4,096 of qkv's outputs where attention would be.
//
// Why: separate kernels leave a gap in the weight stream at each of a token's ~130 dependent
// products, and tools/grid_barrier_probe.cu showed a grid barrier costs about what a
// graph-replayed launch does, so fewer launches alone would not pay. Here one warp of each block
// streams every weight of the chain into a shared-memory ring and never waits for activations
// (chain_kernel.cuh): while the other warps wait for the previous product, the next one's
// weights are already arriving.
//
// The run: checks first (every checked launch starts from zeroed outputs, so a product that read
// its input too early fails), then a table of modes that each take a part away, then where each
// block's cycles go. Built by CMake as `mlxn_decode_stream_probe` (bench/, CUDA, sm_90), or:
// clang-format off
//   nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/dsp tools/decode_stream_probe/main.cu
//   /tmp/dsp              checks, timings, phases
//   /tmp/dsp profile M    two launches of mode M (0-6, layout.cuh), for ncu
// clang-format on
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "../cuda_check.h"
#include "chain_kernel.cuh"
#include "layout.cuh"
#include "reference.h"

using namespace probe;

namespace {

constexpr const char* kModeNames[kModeCount] = {"everything",
                                                "no flag waits",
                                                "flags, no staging",
                                                "neither flags nor staging",
                                                "the ring alone",
                                                "the products alone",
                                                "products and staging, no copies"};
constexpr const char* kCopyNames[] = {"one bulk copy a unit", "9 bulk copies a unit",
                                      "16-byte cp.async"};

float elapsed_ms(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0.0f;
  CHECK(cudaEventElapsedTime(&ms, a, b));
  return ms;
}

/// The chain on the device: the products, their weights, inputs and outputs.
struct Chain {
  std::vector<HostOp> ops;
  Op* d_ops = nullptr;
  size_t bytes = 0;  // weights read by one pass
  int size() const { return static_cast<int>(ops.size()); }
};

Chain build_chain(int sms) {
  constexpr int kLayers = 32, kHidden = 4096, kFfn = 14336, kQkv = 6144, kVocab = 128256;
  Chain c;
  __nv_bfloat16* x0;
  CHECK(cudaMalloc(&x0, kHidden * sizeof(__nv_bfloat16)));
  std::vector<__nv_bfloat16> h(kHidden);
  for (int i = 0; i < kHidden; ++i) h[i] = __float2bfloat16(std::sin(0.37 * i + 0.1));
  CHECK(cudaMemcpy(x0, h.data(), h.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
  auto add = [&](int n, int k, int kind, float gain, const __nv_bfloat16* in) {
    HostOp op{n, k, kind, nullptr, in, nullptr};
    CHECK(cudaMalloc(&op.w, op.bytes()));
    CHECK(cudaMalloc(&op.out, 2 * n * sizeof(__nv_bfloat16)));  // room for n / 2 LL words
    fill_weights<<<4 * sms, 256>>>(op.w, op.bytes() / kUnitBytes, k, gain,
                                   0x1234567ULL + c.ops.size());
    CHECK(cudaGetLastError());
    c.ops.push_back(op);
    return static_cast<const __nv_bfloat16*>(op.out);
  };
  const __nv_bfloat16* prev = x0;
  for (int l = 0; l < kLayers; ++l) {
    const __nv_bfloat16* qkv = add(kQkv, kHidden, kRmsNorm, 1.0f, prev);
    const __nv_bfloat16* o = add(kHidden, kHidden, kPlain, 1.0f, qkv);
    const __nv_bfloat16* gu = add(2 * kFfn, kHidden, kRmsNorm, 2.0f, o);
    prev = add(kHidden, kFfn, kSiluMul, 1.0f, gu);
  }
  add(kVocab, kHidden, kRmsNorm, 1.0f, prev);
  std::vector<Op> dev(c.ops.size());
  for (size_t i = 0; i < c.ops.size(); ++i) {
    const HostOp& o = c.ops[i];
    c.bytes += o.bytes();
    dev[i] = Op{o.w, o.in, o.out, o.n, o.k, o.in_kind};
  }
  CHECK(cudaMalloc(&c.d_ops, dev.size() * sizeof(Op)));
  CHECK(cudaMemcpy(c.d_ops, dev.data(), dev.size() * sizeof(Op), cudaMemcpyHostToDevice));
  CHECK(cudaDeviceSynchronize());
  return c;
}

/// Zeroes every product's output, so that a checked launch cannot pass on an earlier one's
/// values (and no LL tag, never 0, is left over).
void zero_outputs(const Chain& c) {
  for (const HostOp& o : c.ops) CHECK(cudaMemset(o.out, 0, 2 * o.n * sizeof(__nv_bfloat16)));
  CHECK(cudaDeviceSynchronize());
}

/// Launches of chain_kernel: the whole chain as one cooperative launch (epochs counted here), or
/// one launch a product into a stream being captured.
class Runner {
 public:
  Runner(const Chain& c, int sms, cudaStream_t st) : c_(c), sms_(sms), st_(st) {
    CHECK(cudaMalloc(&done_, c.size() * sizeof(unsigned int)));
    CHECK(cudaMemset(done_, 0, c.size() * sizeof(unsigned int)));
    CHECK(cudaMalloc(&lone_counter_, sizeof(unsigned int)));
    for (const void* f : {reinterpret_cast<const void*>(&chain_kernel<false>),
                          reinterpret_cast<const void*>(&chain_kernel<true>)}) {
      CHECK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(smem_bytes(kMaxStages))));
    }
  }

  void chain(int stages, Mode mode, CopyMode copy = kBulkUnit, int late_norm = 0, int ll = 0,
             unsigned long long* phases = nullptr) {
    if (stages < kMinStages || stages > kMaxStages || (ll && mode != kAll)) {
      std::fprintf(stderr, "decode_stream_probe: bad launch (stages %d, mode %d, ll %d)\n", stages,
                   mode, ll);
      std::exit(2);
    }
    const Op* ops = c_.d_ops;
    int n = c_.size();
    void* args[] = {&ops, &n, &stages, &done_, &epoch_, &mode, &copy, &late_norm, &ll, &phases};
    const void* f = phases ? reinterpret_cast<const void*>(&chain_kernel<true>)
                           : reinterpret_cast<const void*>(&chain_kernel<false>);
    CHECK(
        cudaLaunchCooperativeKernel(f, dim3(sms_), dim3(kThreads), args, smem_bytes(stages), st_));
    ++epoch_;  // every block counted itself in on every product
  }

  /// Each product its own launch, in stream order, optionally with programmatic dependent launch
  /// (as the engine launches its kernels). Each counts on a counter of its own, never waited on.
  void per_product(int stages, bool pdl) {
    for (int i = 0; i < c_.size(); ++i) {
      const Op* ops = c_.d_ops + i;
      int one = 1, late = 0, ll = 0;
      unsigned int epoch = 0;
      Mode mode = kAll;  // a single product never waits on a counter
      CopyMode copy = kBulkUnit;
      unsigned long long* phases = nullptr;
      void* args[] = {&ops,  &one,  &stages, &lone_counter_, &epoch, &mode,
                      &copy, &late, &ll,     &phases};
      cudaLaunchAttribute attr{};
      attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr.val.programmaticStreamSerializationAllowed = 1;
      cudaLaunchConfig_t cfg{};
      cfg.gridDim = dim3(sms_);
      cfg.blockDim = dim3(kThreads);
      cfg.dynamicSmemBytes = smem_bytes(stages);
      cfg.stream = st_;
      cfg.attrs = pdl ? &attr : nullptr;
      cfg.numAttrs = pdl ? 1 : 0;
      CHECK(cudaLaunchKernelExC(&cfg, reinterpret_cast<const void*>(&chain_kernel<false>), args));
    }
  }

 private:
  const Chain& c_;
  int sms_;
  cudaStream_t st_;
  unsigned int* done_ = nullptr;
  unsigned int* lone_counter_ = nullptr;
  unsigned int epoch_ = 0;
};

/// Checks products `which` after `launch` ran from zeroed outputs.
template <class Launch>
bool checked(const Chain& c, cudaStream_t st, const char* what, std::initializer_list<int> which,
             bool ll, Launch&& launch) {
  zero_outputs(c);
  launch();
  CHECK(cudaStreamSynchronize(st));
  bool ok = true;
  for (int i : which) {
    const int index = i < 0 ? c.size() + i : i;  // negative: from the end of the chain
    ok = check_op(c.ops[index], index, ll) && ok;
  }
  std::printf("%s: checks %s\n", what, ok ? "passed" : "FAILED");
  return ok;
}

/// Median of 9 timed runs of `body` after one warm-up, in ms.
template <class Body>
float median_ms(cudaStream_t st, cudaEvent_t e0, cudaEvent_t e1, Body&& body) {
  body();
  CHECK(cudaStreamSynchronize(st));
  std::vector<float> t;
  for (int r = 0; r < 9; ++r) {
    CHECK(cudaEventRecord(e0, st));
    body();
    CHECK(cudaEventRecord(e1, st));
    CHECK(cudaStreamSynchronize(st));
    t.push_back(elapsed_ms(e0, e1));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// A CUDA graph of the chain launched one product at a time.
cudaGraphExec_t per_product_graph(Runner& run, cudaStream_t st, int stages, bool pdl) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  run.per_product(stages, pdl);
  CHECK(cudaStreamEndCapture(st, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(cudaGraphDestroy(graph));
  return exec;
}

/// Thread 0's cycles by phase, averaged over the blocks of one timed launch.
void print_phases(Runner& run, cudaStream_t st, int sms, int nops, const char* what, Mode mode,
                  int ll) {
  unsigned long long* rows_d;
  CHECK(cudaMalloc(&rows_d, kPhaseColumns * sms * sizeof(unsigned long long)));
  run.chain(kMaxStages, mode, kBulkUnit, 0, ll, rows_d);
  CHECK(cudaStreamSynchronize(st));
  std::vector<unsigned long long> rows(kPhaseColumns * sms);
  CHECK(cudaMemcpy(rows.data(), rows_d, rows.size() * sizeof(unsigned long long),
                   cudaMemcpyDeviceToHost));
  CHECK(cudaFree(rows_d));
  double s[kPhaseColumns] = {};
  for (int b = 0; b < sms; ++b) {
    for (int j = 0; j < kPhaseColumns; ++j)
      s[j] += static_cast<double>(rows[kPhaseColumns * b + j]) / sms;
  }
  const double total = s[kPhaseTotal];
  const double rest = total - s[kPhaseFlags] - s[kPhaseStaging] - s[kPhaseRing] - s[kPhaseTiles];
  std::printf(
      "phases, %s: flag waits %.1f%%, staging %.1f%%, ring waits %.1f%%, tile barriers %.1f%%, "
      "products and loop %.1f%% of %.0f cycles; staging, cycles a product: loads %.0f, norm %.0f, "
      "stores and group sums %.0f\n",
      what, 100 * s[kPhaseFlags] / total, 100 * s[kPhaseStaging] / total,
      100 * s[kPhaseRing] / total, 100 * s[kPhaseTiles] / total, 100 * rest / total, total,
      s[kPhaseLoads] / nops, s[kPhaseNorm] / nops, s[kPhaseStores] / nops);
}

}  // namespace

int main(int argc, char** argv) {
  const int profile_mode = argc > 2 && std::string(argv[1]) == "profile" ? std::atoi(argv[2]) : -1;
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, sms, prop.l2CacheSize >> 20);
  const Chain chain = build_chain(sms);
  const int nops = chain.size();
  std::printf("chain: %d products, %.3f GB of weights (4-bit g64 + bf16 scales and biases)\n", nops,
              chain.bytes / 1e9);
  cudaStream_t st;
  CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  Runner run(chain, sms, st);
  if (profile_mode >= 0) {
    if (profile_mode >= kModeCount) return 2;
    for (int r = 0; r < 2; ++r) run.chain(kMaxStages, static_cast<Mode>(profile_mode));
    CHECK(cudaStreamSynchronize(st));
    return 0;
  }
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));

  // The read ceiling of this run: a 1 GiB device copy (read + write counted).
  {
    const size_t n = size_t(1) << 30;
    void *a, *b;
    CHECK(cudaMalloc(&a, n));
    CHECK(cudaMalloc(&b, n));
    const float ms = median_ms(
        st, e0, e1, [&] { CHECK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, st)); });
    std::printf("copy ceiling: %.0f GB/s\n", 2.0 * n / ms / 1e6);
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
  }

  bool ok = true;
  ok = checked(chain, st, "everything, one bulk copy a unit", {0, 1, 2, 3, -5, -4, -3, -2, -1},
               false, [&] { run.chain(kMaxStages, kAll); }) &&
       ok;
  for (CopyMode copy : {kBulkPieces, kLaneCopies}) {
    ok = checked(chain, st, kCopyNames[copy], {1, 3, -1}, false,
                 [&] { run.chain(kMaxStages, kAll, copy); }) &&
         ok;
  }
  ok = checked(chain, st, "late norm", {0, 2, -1}, false,
               [&] { run.chain(kMaxStages, kAll, kBulkUnit, 1); }) &&
       ok;
  ok = checked(chain, st, "LL words", {0, 1, 3, -1}, true,
               [&] { run.chain(kMaxStages, kAll, kBulkUnit, 0, 1); }) &&
       ok;
  cudaGraphExec_t graph_plain = per_product_graph(run, st, kMaxStages, false);
  cudaGraphExec_t graph_pdl = per_product_graph(run, st, kMaxStages, true);
  ok = checked(chain, st, "one launch a product, PDL", {1, 3, -1}, false,
               [&] { CHECK(cudaGraphLaunch(graph_pdl, st)); }) &&
       ok;

  auto report = [&](const std::string& what, float ms) {
    std::printf("%-80s %8.1f us  %6.0f GB/s  %5.1f%% of 3.04 TB/s\n", what.c_str(), 1000.0f * ms,
                chain.bytes / ms / 1e6, 100.0 * chain.bytes / ms / 1e6 / 3040.0);
  };
  for (CopyMode copy : {kBulkUnit, kBulkPieces, kLaneCopies}) {
    for (int stages : {4, kMaxStages}) {
      for (int m = 0; m < kModeCount; ++m) {
        const Mode mode = static_cast<Mode>(m);
        if (copy != kBulkUnit && mode != kAll && mode != kNoFlagsNoStaging && mode != kRingOnly)
          continue;
        report(std::string(kCopyNames[copy]) + ", " + kModeNames[m] + ", " +
                   std::to_string(stages) + " stages",
               median_ms(st, e0, e1, [&] { run.chain(stages, mode, copy); }));
      }
    }
  }
  for (int stages : {4, kMaxStages}) {
    report("late norm, everything, " + std::to_string(stages) + " stages",
           median_ms(st, e0, e1, [&] { run.chain(stages, kAll, kBulkUnit, 1); }));
    report("LL words, everything, " + std::to_string(stages) + " stages",
           median_ms(st, e0, e1, [&] { run.chain(stages, kAll, kBulkUnit, 0, 1); }));
  }
  report("one launch a product (graph), 10 stages",
         median_ms(st, e0, e1, [&] { CHECK(cudaGraphLaunch(graph_plain, st)); }));
  report("one launch a product (graph, PDL), 10 stages",
         median_ms(st, e0, e1, [&] { CHECK(cudaGraphLaunch(graph_pdl, st)); }));

  for (Mode mode : {kAll, kNoFlags, kFlagsNoStaging, kNoFlagsNoStaging, kProductsAndStaging}) {
    print_phases(run, st, sms, nops, kModeNames[mode], mode, 0);
  }
  print_phases(run, st, sms, nops, "LL words, everything", kAll, 1);

  // After every mode: the chain still computes the head right.
  ok = checked(chain, st, "final", {-1}, false, [&] { run.chain(kMaxStages, kAll); }) && ok;
  std::printf("all checks: %s\n", ok ? "passed" : "FAILED");
  return ok ? 0 : 1;
}
