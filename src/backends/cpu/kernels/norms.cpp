// CPU reference kernels of norms.h: Gemma RMSNorm / qk-norm (weight offset), L2 norm, residual
// add + RMSNorm, LayerNorm. One row at a time, reductions in double.
#include <algorithm>
#include <cmath>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/norms_kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/norms_params.h"

namespace mlxn::cpu {
namespace {

std::int64_t grain_for(std::int64_t cols) {
  return std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(1, cols));
}

template <class T>
double sum_squares(const T* row, std::int64_t cols) {
  double ss = 0.0;
  for (std::int64_t c = 0; c < cols; ++c) {
    const double v = to_f32(row[c]);
    ss += v * v;
  }
  return ss;
}

// rms_norm_gemma, qk_norm: out = x / sqrt(mean(x^2) + eps) * (w + weight_offset).
template <class T>
void rms_norm_offset(const KernelArgs& k) {
  const auto& p = k.params_as<ops::RowNormParams>();
  const T* x = k.ptr<const T>(0);
  const T* w = k.ptr<const T>(1);
  T* out = k.ptr<T>(2);
  parallel_for(p.rows, grain_for(p.cols), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * p.cols;
      const double inv = 1.0 / std::sqrt(sum_squares(xr, p.cols) / double(p.cols) + p.eps);
      for (std::int64_t c = 0; c < p.cols; ++c) {
        const double v = to_f32(xr[c]) * inv * (double(to_f32(w[c])) + p.weight_offset);
        out[r * p.cols + c] = from_f32<T>(static_cast<float>(v));
      }
    }
  });
}

// l2_norm: out = x / sqrt(sum(x^2) + eps).
template <class T>
void l2_norm(const KernelArgs& k) {
  const auto& p = k.params_as<ops::RowNormParams>();
  const T* x = k.ptr<const T>(0);
  T* out = k.ptr<T>(1);
  parallel_for(p.rows, grain_for(p.cols), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * p.cols;
      const double inv = 1.0 / std::sqrt(sum_squares(xr, p.cols) + p.eps);
      for (std::int64_t c = 0; c < p.cols; ++c) {
        out[r * p.cols + c] = from_f32<T>(static_cast<float>(to_f32(xr[c]) * inv));
      }
    }
  });
}

// add_rms_norm: h = x + residual rounded to T (as an unfused add would store it), then y is the
// RMSNorm of the stored h. h may alias x or residual: each element is read before it is written.
template <class T>
void add_rms_norm(const KernelArgs& k) {
  const auto& p = k.params_as<ops::RowNormParams>();
  const T* x = k.ptr<const T>(0);
  const T* res = k.ptr<const T>(1);
  const T* w = k.ptr<const T>(2);
  T* h = k.ptr<T>(3);
  T* y = k.ptr<T>(4);
  parallel_for(p.rows, grain_for(p.cols), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const std::int64_t base = r * p.cols;
      for (std::int64_t c = 0; c < p.cols; ++c) {
        h[base + c] = from_f32<T>(to_f32(x[base + c]) + to_f32(res[base + c]));
      }
      const double inv = 1.0 / std::sqrt(sum_squares(h + base, p.cols) / double(p.cols) + p.eps);
      for (std::int64_t c = 0; c < p.cols; ++c) {
        const double v = to_f32(h[base + c]) * inv * (double(to_f32(w[c])) + p.weight_offset);
        y[base + c] = from_f32<T>(static_cast<float>(v));
      }
    }
  });
}

// layer_norm: out = (x - mean) / sqrt(var + eps) * w (+ b), biased variance, two-pass in double.
template <class T, bool kBias>
void layer_norm(const KernelArgs& k) {
  const auto& p = k.params_as<ops::RowNormParams>();
  const T* x = k.ptr<const T>(0);
  const T* w = k.ptr<const T>(1);
  const T* b = kBias ? k.ptr<const T>(2) : nullptr;
  T* out = k.ptr<T>(kBias ? 3 : 2);
  parallel_for(p.rows, grain_for(p.cols), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * p.cols;
      double mean = 0.0;
      for (std::int64_t c = 0; c < p.cols; ++c) mean += to_f32(xr[c]);
      mean /= double(p.cols);
      double var = 0.0;
      for (std::int64_t c = 0; c < p.cols; ++c) {
        const double d = to_f32(xr[c]) - mean;
        var += d * d;
      }
      const double inv = 1.0 / std::sqrt(var / double(p.cols) + p.eps);
      for (std::int64_t c = 0; c < p.cols; ++c) {
        double v = (to_f32(xr[c]) - mean) * inv * to_f32(w[c]);
        if constexpr (kBias) v += to_f32(b[c]);
        out[r * p.cols + c] = from_f32<T>(static_cast<float>(v));
      }
    }
  });
}

template <template <class> class Make>
KernelFactory by_dtype() {
  return [](const Specialization& spec) -> const void* {
    const KernelFn fn = dispatch_float<KernelFn>(dtype_from_name(spec.get("dtype")), [](auto tag) {
      return Make<typename decltype(tag)::type>::fn;
    });
    return reinterpret_cast<const void*>(fn);
  };
}

template <class T>
struct RmsOffsetFn {
  static constexpr KernelFn fn = &rms_norm_offset<T>;
};
template <class T>
struct L2Fn {
  static constexpr KernelFn fn = &l2_norm<T>;
};
template <class T>
struct AddRmsFn {
  static constexpr KernelFn fn = &add_rms_norm<T>;
};
template <class T>
struct LayerNormFn {
  static constexpr KernelFn fn = &layer_norm<T, false>;
};
template <class T>
struct LayerNormBiasFn {
  static constexpr KernelFn fn = &layer_norm<T, true>;
};

}  // namespace

void register_norms_kernels(KernelRegistry& registry) {
  registry.register_factory("rms_norm_gemma", by_dtype<RmsOffsetFn>());
  registry.register_factory("qk_norm", by_dtype<RmsOffsetFn>());
  registry.register_factory("l2_norm", by_dtype<L2Fn>());
  registry.register_factory("add_rms_norm", by_dtype<AddRmsFn>());
  registry.register_factory("layer_norm", [](const Specialization& spec) -> const void* {
    const bool bias = spec.get("bias") == "1";
    return bias ? by_dtype<LayerNormBiasFn>()(spec) : by_dtype<LayerNormFn>()(spec);
  });
}

}  // namespace mlxn::cpu
