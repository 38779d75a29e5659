// CPU reference kernels for add, mul and casts among f32, f16 and bf16.
#include "backends/cpu/kernels/kernels.h"

#include "backends/cpu/thread_pool.h"
#include "ops/op_params.h"

namespace mlxn::cpu {
namespace {

constexpr std::int64_t kGrain = 1 << 15;

template <class T, class Op>
void binary(const KernelArgs& k) {
  const auto& p = k.params_as<ops::BinaryParams>();
  const T* a = k.ptr<const T>(0);
  const T* b = k.ptr<const T>(1);
  T* out = k.ptr<T>(2);
  parallel_for(p.n, kGrain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      out[i] = from_f32<T>(Op::apply(to_f32(a[i]), to_f32(b[i])));
    }
  });
}

struct AddOp {
  static float apply(float x, float y) { return x + y; }
};
struct MulOp {
  static float apply(float x, float y) { return x * y; }
};

template <class Src, class Dst>
void cast(const KernelArgs& k) {
  const auto& p = k.params_as<ops::CastParams>();
  const Src* in = k.ptr<const Src>(0);
  Dst* out = k.ptr<Dst>(1);
  parallel_for(p.n, kGrain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) out[i] = from_f32<Dst>(to_f32(in[i]));
  });
}

template <class Src>
KernelFn cast_to(DType dst) {
  switch (dst) {
    case DType::F32: return &cast<Src, float>;
    case DType::F16: return &cast<Src, F16>;
    case DType::BF16: return &cast<Src, BF16>;
    default: return nullptr;
  }
}

}  // namespace

KernelFn add_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&binary<typename decltype(tag)::type, AddOp>);
  });
}

KernelFn mul_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&binary<typename decltype(tag)::type, MulOp>);
  });
}

KernelFn cast_kernel(DType src, DType dst) {
  return dispatch_float<KernelFn>(
      src, [dst](auto tag) { return cast_to<typename decltype(tag)::type>(dst); });
}

}  // namespace mlxn::cpu
