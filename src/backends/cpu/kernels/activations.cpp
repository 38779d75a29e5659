// CPU reference kernels of the activations: unary (scalar_mul, silu, gelu, softcap) and gated
// (silu_mul, gelu_mul, sigmoid_mul). Each element is computed in double and rounded once.
#include <cmath>
#include <numbers>

#include "backends/cpu/kernels/activations_kernels.h"
#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/activations_params.h"

namespace mlxn::cpu {
namespace {

constexpr std::int64_t kGrain = 1 << 14;

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

double gelu_erf(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
}

struct ScalarMul {
  static double apply(double x, double s) { return x * s; }
};
struct Silu {
  static double apply(double x, double) { return x * sigmoid(x); }
};
struct GeluTanh {
  static double apply(double x, double) { return gelu_tanh(x); }
};
struct GeluErf {
  static double apply(double x, double) { return gelu_erf(x); }
};
struct Softcap {
  static double apply(double x, double c) { return c * std::tanh(x / c); }
};
struct Sigmoid {
  static double apply(double x, double) { return sigmoid(x); }
};

// out[i] = Op(x[i]); out may alias x (each element is read before it is written).
template <class T, class Op>
void unary(const KernelArgs& k) {
  const auto& p = k.params_as<ops::ActivationParams>();
  const T* x = k.ptr<const T>(0);
  T* out = k.ptr<T>(1);
  const double s = p.s;
  parallel_for(p.n, kGrain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      out[i] = from_f32<T>(static_cast<float>(Op::apply(to_f32(x[i]), s)));
    }
  });
}

// out[i] = Op(gate[i]) * up[i].
template <class T, class Op>
void gated(const KernelArgs& k) {
  const auto& p = k.params_as<ops::ActivationParams>();
  const T* gate = k.ptr<const T>(0);
  const T* up = k.ptr<const T>(1);
  T* out = k.ptr<T>(2);
  parallel_for(p.n, kGrain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const double v = Op::apply(to_f32(gate[i]), 0.0) * static_cast<double>(to_f32(up[i]));
      out[i] = from_f32<T>(static_cast<float>(v));
    }
  });
}

template <class Op, bool kGated>
void add(KernelRegistry& registry, const char* name) {
  registry.register_factory(name, [](const Specialization& spec) -> const void* {
    const KernelFn fn = dispatch_float<KernelFn>(dtype_from_name(spec.get("dtype")), [](auto tag) {
      using T = typename decltype(tag)::type;
      return kGated ? static_cast<KernelFn>(&gated<T, Op>) : static_cast<KernelFn>(&unary<T, Op>);
    });
    return reinterpret_cast<const void*>(fn);
  });
}

}  // namespace

void register_activations_kernels(KernelRegistry& registry) {
  add<ScalarMul, false>(registry, "scalar_mul");
  add<Silu, false>(registry, "silu");
  add<GeluTanh, false>(registry, "gelu_tanh");
  add<GeluErf, false>(registry, "gelu_erf");
  add<Softcap, false>(registry, "softcap");
  add<Silu, true>(registry, "silu_mul");
  add<GeluTanh, true>(registry, "gelu_tanh_mul");
  add<GeluErf, true>(registry, "gelu_erf_mul");
  add<Sigmoid, true>(registry, "sigmoid_mul");
}

}  // namespace mlxn::cpu
