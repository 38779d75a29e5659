// The dense "matmul" kernel on CUDA (m > 1): a cuBLASLt GEMM enqueued by host code (a
// host-launch dispatch, see host_launch.h). Handles, per-stream workspaces and algorithm choices
// live in one context per device, created on first use (never at library load, so binaries
// start and CPU-only runs work without a GPU driver) and kept for the life of the process.
#include <cublasLt.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/host_launch.h"
#include "backends/cuda/kernels/matmul_kernels.h"
#include "ops/matmul_params.h"

namespace mlxn::cuda {
namespace {

// Split-K and stream-K algorithms need scratch; 32 MiB is what NVIDIA suggests for Hopper.
constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;

void check_lt(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error(ErrorKind::CommandBuffer, std::string("matmul (cuBLASLt): ") + what +
                                              " failed: " + cublasLtGetStatusName(status) + " (" +
                                              cublasLtGetStatusString(status) + ")");
  }
}

// Largest power of two (at most 256) dividing the address: what the heuristic may assume.
std::uint32_t alignment_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t align = 256;
  while (align > 1 && (a % align) != 0) align >>= 1;
  return align;
}

// Everything that decides which algorithm is valid and good.
using PlanKey = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, bool, std::uint32_t,
                           std::uint32_t, std::uint32_t, std::size_t>;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

struct DeviceContext {
  std::mutex mutex;  // cuBLASLt calls and the tables below; one enqueue at a time per device
  cublasLtHandle_t handle = nullptr;
  std::map<cudaStream_t, void*> workspaces;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;
};

// Contexts are never destroyed: enqueued work may use their workspaces until the process ends,
// and destroying cuBLAS state during static destruction races the CUDA runtime's own teardown.
DeviceContext& context_for(int device) {
  static std::mutex mutex;
  static auto* contexts = new std::map<int, DeviceContext*>();
  std::lock_guard<std::mutex> lock(mutex);
  DeviceContext*& ctx = (*contexts)[device];
  if (ctx == nullptr) ctx = new DeviceContext();
  return *ctx;
}

cudaDataType_t data_type(DType dtype) {
  switch (dtype) {
    case DType::F16:
      return CUDA_R_16F;
    case DType::BF16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

template <class V>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const V& v,
              const char* what) {
  check_lt(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)), what);
}

// Column-major view of the row-major problem: out^T [n, m] = w [n, k] (stored as k x n,
// transposed) times x^T [k, m] — the "TN" GEMM, the layout tensor-core kernels prefer.
std::unique_ptr<Plan> make_plan(cublasLtHandle_t handle, DType dtype, const ops::MatmulParams& p,
                                bool bias_epilogue, std::uint32_t align_w, std::uint32_t align_x,
                                std::uint32_t align_out, std::size_t workspace) {
  auto plan = std::make_unique<Plan>();
  const cudaDataType_t t = data_type(dtype);
  // f32 in, f32 compute: exact f32 math (no TF32), as the CPU oracle and the f32 bound expect.
  check_lt(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc create");
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, trans_a, "transa");
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, trans_b, "transb");
  if (bias_epilogue) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;  // bias[row of out^T] = bias[n]
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epi, "epilogue");
  }
  const auto u = [](std::int64_t v) { return static_cast<std::uint64_t>(v); };
  check_lt(cublasLtMatrixLayoutCreate(&plan->a, t, u(p.k), u(p.n), p.k), "layout w");
  check_lt(cublasLtMatrixLayoutCreate(&plan->b, t, u(p.k), u(p.m), p.k), "layout x");
  check_lt(cublasLtMatrixLayoutCreate(&plan->c, t, u(p.n), u(p.m), p.n), "layout out");

  cublasLtMatmulPreference_t pref = nullptr;
  check_lt(cublasLtMatmulPreferenceCreate(&pref), "preference create");
  const std::uint64_t ws = workspace;
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  // The heuristic assumes 256-byte aligned operands unless told otherwise: views may not be.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, std::uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_w},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_x},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_out},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_out}};
  for (const auto& [attr, value] : aligns) {
    if (st == CUBLAS_STATUS_SUCCESS) {
      st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value));
    }
  }
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(handle, plan->desc, plan->a, plan->b, plan->c, plan->c,
                                        pref, 1, &result, &returned);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  check_lt(st, "algorithm heuristic");
  if (returned == 0) {
    throw Error(ErrorKind::Unsupported,
                "matmul (cuBLASLt): no algorithm for m=" + std::to_string(p.m) +
                    " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k) + " " +
                    std::string(dtype_name(dtype)));
  }
  plan->algo = result.algo;
  return plan;
}

template <DType D>
void enqueue_gemm(const DeviceArgs& args, cudaStream_t stream) {
  ops::MatmulParams p;
  std::memcpy(&p, args.params, sizeof(p));
  const void* x = args.ptr[0];
  const void* w = args.ptr[1];
  void* out = args.ptr[2];
  const void* bias = p.has_bias ? args.ptr[3] : nullptr;
  // cuBLASLt documents no alignment preference for the epilogue's bias and may assume an
  // aligned one; a bias view that is not 16-byte aligned gets a separate bias-add kernel.
  const bool bias_epilogue = bias != nullptr && alignment_of(bias) >= 16;

  int device = 0;
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaGetDevice(&device));
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaStreamIsCapturing(stream, &capture));
  DeviceContext& ctx = context_for(device);
  std::lock_guard<std::mutex> lock(ctx.mutex);
  if (ctx.handle == nullptr) check_lt(cublasLtCreate(&ctx.handle), "handle create");

  // A captured GEMM gets no workspace: branches of one graph may run concurrently, and every
  // replay would share whatever buffer was baked in at capture.
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  if (capture == cudaStreamCaptureStatusNone) {
    void*& ws = ctx.workspaces[stream];
    if (ws == nullptr) {
      MLXN_CUDA_CHECK(ErrorKind::Allocation, cudaMalloc(&ws, kWorkspaceBytes));
    }
    workspace = ws;
    workspace_bytes = kWorkspaceBytes;
  }

  const PlanKey key{static_cast<int>(D),
                    p.m,
                    p.n,
                    p.k,
                    bias_epilogue,
                    alignment_of(w),
                    alignment_of(x),
                    alignment_of(out),
                    workspace_bytes};
  std::unique_ptr<Plan>& plan = ctx.plans[key];
  if (!plan) {
    plan = make_plan(ctx.handle, D, p, bias_epilogue, alignment_of(w), alignment_of(x),
                     alignment_of(out), workspace_bytes);
  }
  if (bias_epilogue) set_desc(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, "bias pointer");
  const float alpha = 1.0f, beta = 0.0f;
  check_lt(cublasLtMatmul(ctx.handle, plan->desc, &alpha, w, plan->a, x, plan->b, &beta, out,
                          plan->c, out, plan->c, &plan->algo, workspace, workspace_bytes, stream),
           "matmul");
  if (bias != nullptr && !bias_epilogue) {
    DeviceArgs bargs = args;
    bargs.ptr[0] = out;
    bargs.ptr[1] = const_cast<void*>(bias);
    const LaunchConfig lc = bias_add_configure(D)(bargs);
    void* kernel_args[] = {&bargs};
    MLXN_CUDA_CHECK(ErrorKind::CommandBuffer,
                    cudaLaunchKernel(lc.func, lc.grid, lc.block, kernel_args, lc.smem, stream));
  }
}

template <DType D>
LaunchConfig gemm_config(const DeviceArgs&) {
  return host_launch_config(&enqueue_gemm<D>);
}

}  // namespace

ConfigureFn dense_matmul_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &gemm_config<DType::F32>;
    case DType::F16:
      return &gemm_config<DType::F16>;
    case DType::BF16:
      return &gemm_config<DType::BF16>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
