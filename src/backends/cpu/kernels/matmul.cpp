// CPU reference kernels of the matmul family: dense x @ w^T (+ bias) and the quantized forms,
// which dequantize one weight row at a time to f32 and dot it with every row of x that uses it.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/matmul_kernels.h"
#include "backends/cpu/kernels/row_dot.h"
#include "backends/cpu/thread_pool.h"
#include "mlxn/core/error.h"
#include "mlxn/core/kernel_registry.h"
#include "mlxn/io/ggml_dequant.h"
#include "mlxn/io/ggml_types.h"
#include "ops/matmul_params.h"
#include "ops/quant_decode_tiles.h"

namespace mlxn::cpu {
namespace {

// Rows per parallel_for chunk: enough multiply-adds per chunk to outweigh the scheduling.
std::int64_t row_grain(std::int64_t work_per_row) {
  return std::max<std::int64_t>(1,
                                (std::int64_t{1} << 16) / std::max<std::int64_t>(1, work_per_row));
}

template <class T>
void matmul(const KernelArgs& a) {
  const auto& p = a.params_as<ops::MatmulParams>();
  const T* x = a.ptr<const T>(0);
  const T* w = a.ptr<const T>(1);
  T* out = a.ptr<T>(2);
  const T* bias = p.has_bias ? a.ptr<const T>(3) : nullptr;
  std::vector<float> xf(static_cast<std::size_t>(p.m * p.k));
  to_f32_row(x, p.m * p.k, xf.data());
  parallel_for(p.n, row_grain(p.m * p.k), [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> wr(static_cast<std::size_t>(p.k));
    for (std::int64_t j = lo; j < hi; ++j) {
      to_f32_row(w + j * p.k, p.k, wr.data());
      const double b = bias ? to_f32(bias[j]) : 0.0;
      for (std::int64_t i = 0; i < p.m; ++i) {
        out[i * p.n + j] =
            from_f32<T>(static_cast<float>(dot(xf.data() + i * p.k, wr.data(), p.k) + b));
      }
    }
  });
}

float scale_at(const void* base, std::int32_t type, std::int64_t i) {
  switch (type) {
    case ops::kScaleF16:
      return f16_bits_to_f32(static_cast<const std::uint16_t*>(base)[i]);
    case ops::kScaleBF16:
      return bf16_bits_to_f32(static_cast<const std::uint16_t*>(base)[i]);
    default:
      return static_cast<const float*>(base)[i];
  }
}

// MLX affine: row `row` (counting over all experts) of the packed weight to f32.
struct MlxRows {
  const std::uint32_t* packed;
  const void* scales;
  const void* biases;
  const ops::QuantMatmulParams* p;
  void operator()(std::int64_t row, float* dst) const {
    const int bits = p->bits;
    const std::int64_t row_words = p->k * bits / 32;
    const std::int64_t groups = p->k / p->group_size;
    const std::uint32_t* words = packed + row * row_words;
    const std::uint32_t mask = (1u << bits) - 1u;
    const bool tiles = p->layout == ops::kLayoutDecodeTiles;
    float scale = 0.0f, bias = 0.0f;
    for (std::int64_t j = 0; j < p->k; ++j) {
      if (j % p->group_size == 0) {
        const std::int64_t g = row * groups + j / p->group_size;
        scale = scale_at(scales, p->scale_type, g);
        bias = scale_at(biases, p->scale_type, g);
      }
      if (tiles) {
        // 4 bits: code j is nibble j % 8 of word j / 8, the (j / 8) % 4-th word of the 16 bytes
        // that hold codes [32 (j / 32), +32) (quant_decode_tiles.h).
        const std::int64_t off = ops::decode_tile_offset(row, j / 32, p->k / 2) + 4 * ((j / 8) % 4);
        const std::uint32_t word = packed[off / 4];
        dst[j] = scale * static_cast<float>((word >> (4 * (j % 8))) & mask) + bias;
        continue;
      }
      // Element j is bits [j*bits, (j+1)*bits) of the row's stream; it may straddle two words.
      const std::int64_t bit = j * bits;
      const std::int64_t wi = bit / 32;
      const int shift = static_cast<int>(bit % 32);
      std::uint64_t v = words[wi] >> shift;
      if (shift + bits > 32) v |= static_cast<std::uint64_t>(words[wi + 1]) << (32 - shift);
      dst[j] = scale * static_cast<float>(static_cast<std::uint32_t>(v) & mask) + bias;
    }
  }
};

struct GgmlRows {
  const std::byte* w;
  io::GgmlType type;
  std::int64_t row_bytes;
  std::int64_t k;
  void operator()(std::int64_t row, float* dst) const {
    io::ggml_dequantize(type, {w + row * row_bytes, static_cast<std::size_t>(row_bytes)},
                        {dst, static_cast<std::size_t>(k)});
  }
};

// out[a, j] = x_a . W_e(a)[j] for every assignment a = token * top_k + slot.
template <class T, class Rows>
void quantized(const KernelArgs& a, const char* op, std::size_t out_index, const Rows& rows) {
  const auto& p = a.params_as<ops::QuantMatmulParams>();
  const T* x = a.ptr<const T>(0);
  T* out = a.ptr<T>(out_index);
  const std::int32_t* ids = p.has_ids ? a.ptr<const std::int32_t>(out_index + 1) : nullptr;
  const std::int64_t n_assign = p.m * p.top_k;
  // Assignments grouped by expert, so each weight row is dequantized once per expert used.
  std::vector<std::vector<std::int64_t>> by_expert(static_cast<std::size_t>(p.n_experts));
  for (std::int64_t i = 0; i < n_assign; ++i) {
    const std::int64_t e = ids ? ids[i] : 0;
    if (e < 0 || e >= p.n_experts) {
      throw Error(ErrorKind::CommandBuffer, std::string(op) + ": ids[" + std::to_string(i) +
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
  parallel_for(p.n, row_grain(n_assign * p.k), [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> wr(static_cast<std::size_t>(p.k));
    for (std::int64_t j = lo; j < hi; ++j) {
      for (std::int64_t e = 0; e < p.n_experts; ++e) {
        const auto& list = by_expert[static_cast<std::size_t>(e)];
        if (list.empty()) continue;
        rows(e * p.n + j, wr.data());
        for (std::int64_t i : list) {
          out[i * p.n + j] =
              from_f32<T>(static_cast<float>(dot(xf.data() + i * p.k, wr.data(), p.k)));
        }
      }
    }
  });
}

template <class T>
void mlx_quantized(const KernelArgs& a) {
  const auto& p = a.params_as<ops::QuantMatmulParams>();
  const MlxRows rows{a.ptr<const std::uint32_t>(1), a.ptr<const void>(2), a.ptr<const void>(3), &p};
  quantized<T>(a, "quantized_matmul", 4, rows);
}

template <class T>
void ggml_quantized(const KernelArgs& a) {
  const auto& p = a.params_as<ops::QuantMatmulParams>();
  const auto type = static_cast<io::GgmlType>(p.ggml_type);
  const GgmlRows rows{a.ptr<const std::byte>(1), type,
                      static_cast<std::int64_t>(io::ggml_row_size(type, p.k)), p.k};
  quantized<T>(a, "ggml_matmul", 2, rows);
}

// dequantize / ggml_dequantize: every weight row decoded to f32 as above, then rounded once to
// out's dtype. Bindings: out, then the weight's (as quantized_matmul's, out in x's place).
template <class T, class Rows>
void dequantized(const KernelArgs& a, const Rows& rows) {
  const auto& p = a.params_as<ops::QuantMatmulParams>();
  T* out = a.ptr<T>(0);
  parallel_for(p.n, row_grain(p.k), [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> wr(static_cast<std::size_t>(p.k));
    for (std::int64_t j = lo; j < hi; ++j) {
      rows(j, wr.data());
      for (std::int64_t c = 0; c < p.k; ++c) out[j * p.k + c] = from_f32<T>(wr[c]);
    }
  });
}

template <class T>
void mlx_dequant(const KernelArgs& a) {
  const auto& p = a.params_as<ops::QuantMatmulParams>();
  dequantized<T>(
      a, MlxRows{a.ptr<const std::uint32_t>(1), a.ptr<const void>(2), a.ptr<const void>(3), &p});
}

template <class T>
void ggml_dequant(const KernelArgs& a) {
  const auto& p = a.params_as<ops::QuantMatmulParams>();
  const auto type = static_cast<io::GgmlType>(p.ggml_type);
  dequantized<T>(a, GgmlRows{a.ptr<const std::byte>(1), type,
                             static_cast<std::int64_t>(io::ggml_row_size(type, p.k)), p.k});
}

KernelFn mlx_dequant_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&mlx_dequant<typename decltype(tag)::type>);
  });
}

KernelFn ggml_dequant_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&ggml_dequant<typename decltype(tag)::type>);
  });
}

template <KernelFn (*Lookup)(DType)>
KernelFactory by_dtype() {
  return [](const Specialization& spec) -> const void* {
    return reinterpret_cast<const void*>(Lookup(dtype_from_name(spec.get("dtype"))));
  };
}

// tile_for_decode: out (binding 0) = the packed codes of binding 1 in the DecodeTiles order, 16
// bytes (32 codes) at a time.
void tile_decode(const KernelArgs& a) {
  const auto& p = a.params_as<ops::QuantMatmulParams>();
  auto* out = a.ptr<std::byte>(0);
  const auto* in = a.ptr<const std::byte>(1);
  const std::int64_t row_bytes = p.k / 2, segs = p.k / 32;
  parallel_for(p.n, row_grain(p.k), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t row = lo; row < hi; ++row) {
      for (std::int64_t seg = 0; seg < segs; ++seg) {
        std::memcpy(out + ops::decode_tile_offset(row, seg, row_bytes),
                    in + row * row_bytes + 16 * seg, 16);
      }
    }
  });
}

}  // namespace

KernelFn matmul_kernel(DType dtype) {
  return dispatch_float<KernelFn>(
      dtype, [](auto tag) { return static_cast<KernelFn>(&matmul<typename decltype(tag)::type>); });
}

KernelFn quantized_matmul_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&mlx_quantized<typename decltype(tag)::type>);
  });
}

KernelFn ggml_matmul_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&ggml_quantized<typename decltype(tag)::type>);
  });
}

void register_matmul_kernels(KernelRegistry& registry) {
  registry.register_factory("quantized_tile_decode", [](const Specialization&) -> const void* {
    return reinterpret_cast<const void*>(static_cast<KernelFn>(&tile_decode));
  });
  registry.register_factory("matvec", by_dtype<matmul_kernel>());
  registry.register_factory("matmul", by_dtype<matmul_kernel>());
  registry.register_factory("quantized_matvec", by_dtype<quantized_matmul_kernel>());
  registry.register_factory("quantized_matmul", by_dtype<quantized_matmul_kernel>());
  registry.register_factory("ggml_matvec", by_dtype<ggml_matmul_kernel>());
  registry.register_factory("ggml_matmul", by_dtype<ggml_matmul_kernel>());
  registry.register_factory("matmul_id", by_dtype<matmul_id_kernel>());
  registry.register_factory("quantized_dequant", by_dtype<mlx_dequant_kernel>());
  registry.register_factory("ggml_dequant", by_dtype<ggml_dequant_kernel>());
}

}  // namespace mlxn::cpu
