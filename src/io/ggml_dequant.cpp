// GGML block dequantizers: plain re-implementations of ggml's reference layouts, one function
// per type, each turning one block into block_size floats in ggml's element order.
#include "mlxn/io/ggml_dequant.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "io/ggml_k_scales.h"
#include "mlxn/core/error.h"
#include "mlxn/core/half.h"

namespace mlxn::io {

const std::int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

namespace {

using Byte = std::uint8_t;

float f16_at(const Byte* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_bits_to_f32(h);
}

// 32-element blocks ---------------------------------------------------------------------------

// Q4_0: f16 d, 16 bytes; low nibbles are elements 0-15, high nibbles 16-31; x = d * (q - 8).
void block_q4_0(const Byte* b, float* y) {
  const float d = f16_at(b);
  const Byte* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1: f16 d, f16 m, 16 bytes of nibbles; x = d * q + m.
void block_q4_1(const Byte* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  const Byte* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// Q5_0: f16 d, u32 qh (bit j = 5th bit of element j), 16 bytes of nibbles; x = d * (q - 16).
void block_q5_0(const Byte* b, float* y) {
  const float d = f16_at(b);
  std::uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const Byte* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
    const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = static_cast<float>(((qs[j] & 0x0F) | h0) - 16) * d;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
  }
}

// Q5_1: f16 d, f16 m, u32 qh, 16 bytes of nibbles; x = d * q + m.
void block_q5_1(const Byte* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  std::uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const Byte* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
    const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = static_cast<float>((qs[j] & 0x0F) | h0) * d + m;
    y[j + 16] = static_cast<float>((qs[j] >> 4) | h1) * d + m;
  }
}

// Q8_0: f16 d, 32 int8; x = d * q.
void block_q8_0(const Byte* b, float* y) {
  const float d = f16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
}

// IQ4_NL: f16 d, 16 bytes of nibbles indexing the non-linear codebook; same order as Q4_0.
void block_iq4_nl(const Byte* b, float* y) {
  const float d = f16_at(b);
  const Byte* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kIq4nlValues[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
  }
}

// 256-element super-blocks (K-quants) -------------------------------------------------------

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] 2-bit, f16 d, f16 dmin.
void block_q2_k(const Byte* b, float* y) {
  const Byte* scales = b;
  const Byte* q = b + 16;
  const float d = f16_at(b + 80);
  const float dmin = f16_at(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const Byte sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) {
          *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
    }
    q += 32;
  }
}

// Q3_K: hmask[32] (high bit), qs[64] (low 2 bits), scales[12] (16 packed 6-bit), f16 d.
void block_q3_k(const Byte* b, float* y) {
  const Byte* hm = b;
  const Byte* q = b + 32;
  const Byte* packed = b + 96;
  const float d_all = f16_at(b + 108);
  std::int8_t scales[16];
  for (int k = 0; k < 16; ++k) {
    const int low = k < 8 ? (packed[k] & 0x0F) : (packed[k - 8] >> 4);
    const int high = (packed[8 + k % 4] >> (2 * (k / 4))) & 3;
    scales[k] = static_cast<std::int8_t>(low | (high << 4));
  }
  int is = 0;
  Byte m = 1;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l) {
          const int lo = (q[l + 16 * half] >> shift) & 3;
          const int hi = (hm[l + 16 * half] & m) ? 0 : 4;
          *y++ = dl * static_cast<float>(lo - hi);
        }
      }
      m = static_cast<Byte>(m << 1);
    }
    q += 32;
  }
}

// Q4_K: f16 d, f16 dmin, scales[12], qs[128]; per 64 elements: 32 low nibbles then 32 high.
void block_q4_k(const Byte* b, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const Byte* scales = b + 4;
  const Byte* q = b + 16;
  int is = 0;
  for (int j = 0; j < 256; j += 64) {
    Byte sc, m;
    detail::unpack_scale_min_k4(is + 0, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    detail::unpack_scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

// Q5_K: like Q4_K plus qh[32] holding the 5th bit (two bits per 64-element group).
void block_q5_k(const Byte* b, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const Byte* scales = b + 4;
  const Byte* qh = b + 16;
  const Byte* ql = b + 48;
  int is = 0;
  Byte u1 = 1, u2 = 2;
  for (int j = 0; j < 256; j += 64) {
    Byte sc, m;
    detail::unpack_scale_min_k4(is + 0, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    detail::unpack_scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) {
      *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
    ql += 32;
    is += 2;
    u1 = static_cast<Byte>(u1 << 2);
    u2 = static_cast<Byte>(u2 << 2);
  }
}

// Q6_K: ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16], f16 d; x = d * sc * (q - 32).
void block_q6_k(const Byte* b, float* y) {
  const Byte* ql = b;
  const Byte* qh = b + 128;
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

// Plain element types -------------------------------------------------------------------------

template <class T>
void plain_to_f32(const Byte* src, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    y[i] = static_cast<float>(v);
  }
}

using BlockFn = void (*)(const Byte*, float*);

BlockFn block_fn(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return block_q4_0;
    case GgmlType::Q4_1:
      return block_q4_1;
    case GgmlType::Q5_0:
      return block_q5_0;
    case GgmlType::Q5_1:
      return block_q5_1;
    case GgmlType::Q8_0:
      return block_q8_0;
    case GgmlType::IQ4_NL:
      return block_iq4_nl;
    case GgmlType::Q2_K:
      return block_q2_k;
    case GgmlType::Q3_K:
      return block_q3_k;
    case GgmlType::Q4_K:
      return block_q4_k;
    case GgmlType::Q5_K:
      return block_q5_k;
    case GgmlType::Q6_K:
      return block_q6_k;
    default:
      return nullptr;
  }
}

bool is_plain_supported(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::F64:
    case GgmlType::I8:
    case GgmlType::I16:
    case GgmlType::I32:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool ggml_can_dequantize(GgmlType type) {
  return block_fn(type) != nullptr || is_plain_supported(type);
}

void ggml_dequantize(GgmlType type, std::span<const std::byte> src, std::span<float> dst) {
  if (!ggml_can_dequantize(type)) {
    throw Error(ErrorKind::Unsupported,
                "dequantization of GGML type " + ggml_type_name(type) + " is not supported");
  }
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  std::optional<std::uint64_t> need = ggml_try_row_size(type, dst.size());
  if (!need || *need != src.size()) {
    throw Error(ErrorKind::InvalidArgument,
                "ggml_dequantize(" + std::string(traits.name) + "): " + std::to_string(dst.size()) +
                    " elements need " +
                    (need ? std::to_string(*need) + " bytes" : std::string("whole blocks")) +
                    ", got " + std::to_string(src.size()) + " bytes");
  }
  const auto* s = reinterpret_cast<const Byte*>(src.data());
  float* y = dst.data();
  const std::size_t n = dst.size();
  switch (type) {
    case GgmlType::F32:
      plain_to_f32<float>(s, y, n);
      return;
    case GgmlType::F64:
      plain_to_f32<double>(s, y, n);
      return;
    case GgmlType::I8:
      plain_to_f32<std::int8_t>(s, y, n);
      return;
    case GgmlType::I16:
      plain_to_f32<std::int16_t>(s, y, n);
      return;
    case GgmlType::I32:
      plain_to_f32<std::int32_t>(s, y, n);
      return;
    case GgmlType::F16:
      for (std::size_t i = 0; i < n; ++i) y[i] = f16_at(s + 2 * i);
      return;
    case GgmlType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, s + 2 * i, 2);
        y[i] = bf16_bits_to_f32(h);
      }
      return;
    default:
      break;
  }
  BlockFn fn = block_fn(type);
  const std::size_t n_blocks = n / traits.block_size;
  for (std::size_t i = 0; i < n_blocks; ++i) {
    fn(s + i * traits.type_size, y + i * traits.block_size);
  }
}

}  // namespace mlxn::io
