// Embedding lookup kernels: dense rows (16-byte packs) and MLX-affine-quantized rows (32 codes
// per thread, unpacked with compile-time shifts). A block per token; bad ids fail the submission.
#include <cstdint>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/embedding_kernels.h"
#include "ops/embedding_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kMaxThreads = 256;
constexpr long long kMaxBlocks = 1ll << 20;  // further tokens are strided over

// True (after reporting it once per block) when `id` is outside [0, vocab): the row is skipped,
// so nothing outside the table is ever read.
__device__ __forceinline__ bool bad_id(const DeviceArgs& args, long long id, long long vocab,
                                       long long token) {
  if (id >= 0 && id < vocab) return false;
  if (threadIdx.x == 0) report_status(args, ops::kStatusEmbeddingIdOutOfRange, token);
  return true;
}

template <class T>
__global__ void __launch_bounds__(kMaxThreads)
    embedding_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::EmbeddingParams>(args);
  const T* table = static_cast<const T*>(args.ptr[0]);
  const int* ids = static_cast<const int*>(args.ptr[1]);
  T* out = static_cast<T*>(args.ptr[2]);
  const long long hidden = p.hidden;
  constexpr int V = 16 / sizeof(T);
  const bool vec = hidden % V == 0 && aligned16(table) && aligned16(out);
  for (long long t = blockIdx.x; t < p.n_tokens; t += gridDim.x) {
    const long long id = ids[t];
    if (bad_id(args, id, p.vocab, t)) continue;  // uniform over the block
    const T* row = table + id * hidden;
    T* o = out + t * hidden;
    if (vec) {
      for (long long i = threadIdx.x; i < hidden / V; i += blockDim.x) {
        const Pack<T, V> v = load_pack<T, V>(row + i * V);
        Pack<T, V> r;
#pragma unroll
        for (int j = 0; j < V; ++j) r.v[j] = from_f32<T>(to_f32(v.v[j]) * p.scale);
        store_pack<T, V>(o + i * V, r);
      }
    } else {
      for (long long i = threadIdx.x; i < hidden; i += blockDim.x) {
        o[i] = from_f32<T>(to_f32(row[i]) * p.scale);
      }
    }
  }
}

// 32 consecutive codes of a row occupy exactly kBits words, so a unit of 32 starts on a word
// boundary for every bit width, and lies in one group (group sizes are multiples of 32).
template <int kBits, class T>
__device__ __forceinline__ void dequant_unit(const std::uint32_t* src, float s, float b,
                                             float scale, T* dst, bool vec_out) {
  std::uint32_t w[kBits + 1];
#pragma unroll
  for (int k = 0; k < kBits; ++k) w[k] = src[k];
  w[kBits] = 0u;  // never selected: keeps the unrolled window below in bounds
  constexpr std::uint32_t kMask = (1u << kBits) - 1u;
  float vals[32];
#pragma unroll
  for (int j = 0; j < 32; ++j) {
    const int bit = j * kBits;
    const int word = bit >> 5;
    const int shift = bit & 31;
    std::uint32_t q = w[word] >> shift;
    if (shift + kBits > 32) q |= w[word + 1] << (32 - shift);  // code straddles two words
    vals[j] = fmaf(s, static_cast<float>(q & kMask), b) * scale;
  }
  constexpr int V = 16 / sizeof(T);
  if (vec_out) {
#pragma unroll
    for (int k = 0; k < 32 / V; ++k) {
      Pack<T, V> pk;
#pragma unroll
      for (int j = 0; j < V; ++j) pk.v[j] = from_f32<T>(vals[k * V + j]);
      store_pack<T, V>(dst + k * V, pk);
    }
  } else {
#pragma unroll
    for (int j = 0; j < 32; ++j) dst[j] = from_f32<T>(vals[j]);
  }
}

template <class T, class S>
__global__ void __launch_bounds__(kMaxThreads)
    embedding_quantized_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::EmbeddingQuantizedParams>(args);
  const std::uint32_t* packed = static_cast<const std::uint32_t*>(args.ptr[0]);
  const S* scales = static_cast<const S*>(args.ptr[1]);
  const S* biases = static_cast<const S*>(args.ptr[2]);
  const int* ids = static_cast<const int*>(args.ptr[3]);
  T* out = static_cast<T*>(args.ptr[4]);
  const long long hidden = p.hidden;
  const int bits = p.bits;
  const long long row_words = hidden * bits / 32;
  const long long groups = hidden / p.group_size;
  const long long units = hidden / 32;
  // Rows of out are hidden * sizeof(T) bytes apart, a multiple of 64 (hidden % 32 == 0).
  const bool vec_out = aligned16(out);
  for (long long t = blockIdx.x; t < p.n_tokens; t += gridDim.x) {
    const long long id = ids[t];
    if (bad_id(args, id, p.vocab, t)) continue;
    const std::uint32_t* row = packed + id * row_words;
    for (long long u = threadIdx.x; u < units; u += blockDim.x) {
      const long long g = id * groups + u * 32 / p.group_size;
      const float s = to_f32(scales[g]);
      const float b = to_f32(biases[g]);
      const std::uint32_t* src = row + u * bits;
      T* dst = out + t * hidden + u * 32;
      switch (bits) {  // uniform over the launch
        case 2:
          dequant_unit<2>(src, s, b, p.scale, dst, vec_out);
          break;
        case 3:
          dequant_unit<3>(src, s, b, p.scale, dst, vec_out);
          break;
        case 4:
          dequant_unit<4>(src, s, b, p.scale, dst, vec_out);
          break;
        case 5:
          dequant_unit<5>(src, s, b, p.scale, dst, vec_out);
          break;
        case 6:
          dequant_unit<6>(src, s, b, p.scale, dst, vec_out);
          break;
        default:
          dequant_unit<8>(src, s, b, p.scale, dst, vec_out);
          break;
      }
    }
  }
}

unsigned int token_blocks(long long n_tokens) {
  return static_cast<unsigned int>(n_tokens < 1 ? 1
                                                : (n_tokens > kMaxBlocks ? kMaxBlocks : n_tokens));
}

unsigned int threads_for(long long work) {
  long long threads = (work + 31) / 32 * 32;
  if (threads < 32) threads = 32;
  if (threads > kMaxThreads) threads = kMaxThreads;
  return static_cast<unsigned int>(threads);
}

template <class T>
LaunchConfig embedding_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::EmbeddingParams>(args);
  constexpr int V = 16 / sizeof(T);
  return {reinterpret_cast<const void*>(&embedding_kernel<T>), dim3(token_blocks(p.n_tokens)),
          dim3(threads_for((p.hidden + V - 1) / V)), 0, true};
}

template <class T, class S>
LaunchConfig embedding_quantized_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::EmbeddingQuantizedParams>(args);
  return {reinterpret_cast<const void*>(&embedding_quantized_kernel<T, S>),
          dim3(token_blocks(p.n_tokens)), dim3(threads_for(p.hidden / 32)), 0, true};
}

template <class T>
ConfigureFn quantized_for(DType scale_dtype) {
  switch (scale_dtype) {
    case DType::F32:
      return &embedding_quantized_config<T, float>;
    case DType::F16:
      return &embedding_quantized_config<T, __half>;
    case DType::BF16:
      return &embedding_quantized_config<T, __nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn embedding_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &embedding_config<float>;
    case DType::F16:
      return &embedding_config<__half>;
    case DType::BF16:
      return &embedding_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

ConfigureFn embedding_quantized_configure(DType dtype, DType scale_dtype) {
  switch (dtype) {
    case DType::F32:
      return quantized_for<float>(scale_dtype);
    case DType::F16:
      return quantized_for<__half>(scale_dtype);
    case DType::BF16:
      return quantized_for<__nv_bfloat16>(scale_dtype);
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
