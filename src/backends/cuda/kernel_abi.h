// The one calling convention of every mlxn CUDA kernel, shared by host (.cpp) and device (.cu)
// code.
//
// Every kernel takes exactly one by-value DeviceArgs. Uniformity is what lets the queue launch any
// kernel with one cudaLaunchKernel call, lets graphs build kernel nodes the same way, and lets
// GraphExec::set_params rebuild the arguments without knowing the kernel. A kernel is registered
// as a ConfigureFn: given the arguments, it names the __global__ function and its launch shape.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace mlxn::cuda {

// Equal to mlxn::kMaxBindings / mlxn::kMaxParamBytes (checked by static_assert in the host code;
// repeated here so that .cu files need no mlxn core header).
inline constexpr int kMaxBindings = 8;
inline constexpr int kMaxParamBytes = 256;

/// Failure report of the kernels of one submission (or of one graph exec). It lives in pinned,
/// host-mapped memory so the host reads it after completion without a copy. 0 in `code` means ok.
struct KernelStatus {
  unsigned int code;        // ops::StatusCode of the first kernel that failed
  unsigned int tag;         // DeviceArgs::tag of that kernel: which dispatch it was
  unsigned long long info;  // code-specific detail, e.g. the offending element index
};
static_assert(sizeof(KernelStatus) == 16);

/// The single kernel argument: buffer bindings, the status word and the op's inline params.
struct DeviceArgs {
  void* ptr[kMaxBindings];                           // device address of each binding's first byte
  unsigned long long bytes[kMaxBindings];            // bytes each binding covers
  KernelStatus* status;                              // device address of the status slot
  unsigned int tag;                                  // dispatch index, echoed in KernelStatus::tag
  alignas(16) unsigned char params[kMaxParamBytes];  // the op's XxxParams struct, then zeros
};

/// What a ConfigureFn returns. `func` must be the same for every DeviceArgs of one kernel (CUDA
/// graph updates cannot change a node's function); grid and block may depend on the params and
/// must be non-empty (kernels handle an empty problem themselves).
struct LaunchConfig {
  const void* func;
  dim3 grid;
  dim3 block;
  size_t smem;
  /// The kernel calls pdl_wait() (kernels/common.cuh) before it touches memory that earlier
  /// work writes or reads, so it may be launched as a programmatic dependent of the previous
  /// kernel of the stream: its launch and ramp-up then overlap that kernel's tail, which is most
  /// of the cost of the small kernels of a batch-1 decode step.
  bool pdl = false;
};

/// Kernel::entry of the CUDA backend points at one of these.
using ConfigureFn = LaunchConfig (*)(const DeviceArgs&);

/// ConfigureFn <-> Kernel::entry (a const void*). Function pointers round-trip through void* on
/// every platform CUDA supports (POSIX requires it); const is dropped first because a cast
/// between a function pointer and `const void*` may not cast away qualifiers.
inline const void* entry_of(ConfigureFn fn) {
  return reinterpret_cast<const void*>(fn);
}
inline ConfigureFn configure_of(const void* entry) {
  return reinterpret_cast<ConfigureFn>(const_cast<void*>(entry));
}

/// The params of a dispatch viewed as the op's params struct.
template <class P>
__host__ __device__ inline const P& params_as(const DeviceArgs& a) {
  static_assert(sizeof(P) <= kMaxParamBytes, "params struct too large");
  static_assert(alignof(P) <= 16, "params struct over-aligned");
  return *reinterpret_cast<const P*>(a.params);
}

#ifdef __CUDACC__
/// Reports a failure: the first reporter of the submission wins, later ones are dropped.
/// Call it from one thread per warp at most (it goes over PCIe to host memory). The plain
/// read first keeps a flood of failures (a tensor full of NaN) from issuing a flood of atomics.
__device__ inline void report_status(const DeviceArgs& a, unsigned int code,
                                     unsigned long long info) {
  KernelStatus* s = a.status;
  if (s == nullptr) return;
  if (*reinterpret_cast<volatile unsigned int*>(&s->code) != 0u) return;
  if (atomicCAS(&s->code, 0u, code) == 0u) {
    s->tag = a.tag;
    s->info = info;
  }
}
#endif

}  // namespace mlxn::cuda
