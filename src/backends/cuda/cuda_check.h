// Turns CUDA runtime error codes into mlxn::Error with a message that names the failing call.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "mlxn/core/error.h"

namespace mlxn::cuda {

/// "<what>: <error name> (<description>)". Also clears the runtime's last error so that a
/// non-sticky failure does not resurface from an unrelated later call.
inline std::string cuda_error_message(cudaError_t err, const std::string& what) {
  cudaGetLastError();
  return what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_cuda_error(ErrorKind kind, cudaError_t err,
                                                                    const std::string& what) {
  throw Error(kind, cuda_error_message(err, what));
}

/// Throws Error(kind) naming `what` unless `err` is cudaSuccess.
inline void check_cuda(cudaError_t err, ErrorKind kind, const char* what) {
  if (err != cudaSuccess) [[unlikely]] {
    throw_cuda_error(kind, err, what);
  }
}

/// Calls cleanup-path CUDA functions whose failure cannot be acted upon (destructors, frees):
/// the error is dropped and the runtime's last-error state cleared.
inline void ignore_cuda(cudaError_t err) noexcept {
  if (err != cudaSuccess) cudaGetLastError();
}

}  // namespace mlxn::cuda

/// MLXN_CUDA_CHECK(ErrorKind::Allocation, cudaMalloc(&p, n)): throws an Error of that kind whose
/// message quotes the call.
#define MLXN_CUDA_CHECK(kind, call) ::mlxn::cuda::check_cuda((call), (kind), #call)
