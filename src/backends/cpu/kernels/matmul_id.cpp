// CPU reference kernel of the dense expert-routed matmul (ops::matmul_id): every (token, slot)
// assignment multiplies its x row by the rows of its expert. Assignments are grouped by expert
// so each weight row is converted to f32 once per expert used, however many tokens chose it.
#include <algorithm>
#include <string>
#include <vector>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/matmul_kernels.h"
#include "backends/cpu/kernels/row_dot.h"
#include "backends/cpu/thread_pool.h"
#include "mlxn/core/error.h"
#include "ops/matmul_id_params.h"

namespace mlxn::cpu {
namespace {

template <class T>
void matmul_id(const KernelArgs& a) {
  const auto& p = a.params_as<ops::MatmulIdParams>();
  const T* x = a.ptr<const T>(0);
  const T* w = a.ptr<const T>(1);
  T* out = a.ptr<T>(2);
  const std::int32_t* ids = a.ptr<const std::int32_t>(3);
  const std::int64_t n_assign = p.m * p.top_k;
  // Every id is checked before any weight row is read, so a bad id never reads out of bounds.
  std::vector<std::vector<std::int64_t>> by_expert(static_cast<std::size_t>(p.n_experts));
  for (std::int64_t i = 0; i < n_assign; ++i) {
    const std::int64_t e = ids[i];
    if (e < 0 || e >= p.n_experts) {
      throw Error(ErrorKind::CommandBuffer, "matmul_id: ids[" + std::to_string(i) +
                                                "] = " + std::to_string(e) + " is outside [0, " +
                                                std::to_string(p.n_experts) + ")");
    }
    by_expert[static_cast<std::size_t>(e)].push_back(i);
  }
  std::vector<float> xf(static_cast<std::size_t>(n_assign * p.k));
  for (std::int64_t i = 0; i < n_assign; ++i) {
    const T* xr = x + (i / p.top_k) * p.x_token_stride + (i % p.top_k) * p.x_slot_stride;
    to_f32_row(xr, p.k, xf.data() + i * p.k);
  }
  // Enough multiply-adds per chunk of output features to outweigh the scheduling.
  const std::int64_t grain = std::max<std::int64_t>(
      1, (std::int64_t{1} << 16) / std::max<std::int64_t>(1, n_assign * p.k));
  parallel_for(p.n, grain, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> wr(static_cast<std::size_t>(p.k));
    for (std::int64_t j = lo; j < hi; ++j) {
      for (std::int64_t e = 0; e < p.n_experts; ++e) {
        const auto& list = by_expert[static_cast<std::size_t>(e)];
        if (list.empty()) continue;
        to_f32_row(w + (e * p.n + j) * p.k, p.k, wr.data());
        for (std::int64_t i : list) {
          out[i * p.n + j] =
              from_f32<T>(static_cast<float>(dot(xf.data() + i * p.k, wr.data(), p.k)));
        }
      }
    }
  });
}

}  // namespace

KernelFn matmul_id_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&matmul_id<typename decltype(tag)::type>);
  });
}

}  // namespace mlxn::cpu
