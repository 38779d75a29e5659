// The decode-stream probe's host reference: one product of the chain in double precision, from
// the input the GPU actually had, against the GPU's output. Decodes the unit layout of layout.cuh
// independently of the kernel's mma path.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include "../cuda_check.h"
#include "layout.cuh"

namespace probe {

/// A product as the host keeps it: the device Op's fields and how its weights were made.
struct HostOp {
  int n, k, in_kind;
  unsigned char* w;
  const __nv_bfloat16* in;
  __nv_bfloat16* out;
  size_t bytes() const { return static_cast<size_t>(n / 16) * (k / kUnitCodes) * kUnitBytes; }
};

inline float bf(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
inline float round_bf(double v) {
  return __bfloat162float(__float2bfloat16(static_cast<float>(v)));
}

/// n bf16 from a device buffer, plain or in LL words (a bf16 pair in each word's low half).
inline std::vector<__nv_bfloat16> download(const void* p, int n, bool ll_words) {
  std::vector<__nv_bfloat16> v(n);
  if (!ll_words) {
    CHECK(cudaMemcpy(v.data(), p, n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
    return v;
  }
  std::vector<unsigned long long> words(n / 2);
  CHECK(cudaMemcpy(words.data(), p, words.size() * 8, cudaMemcpyDeviceToHost));
  for (int i = 0; i < n / 2; ++i) {
    v[2 * i] = __ushort_as_bfloat16(static_cast<unsigned short>(words[i]));
    v[2 * i + 1] = __ushort_as_bfloat16(static_cast<unsigned short>(words[i] >> 16));
  }
  return v;
}

/// Product `index` in double from the GPU's own input, against the GPU's output; prints one line.
/// ll: the last launch wrote LL words (the input too, unless it is product 0's x). A row fails
/// beyond 1% of the output's RMS plus 0.8% of its value (bf16 rounding of the output alone is up
/// to 0.4%), and a NaN or infinite output always fails.
inline bool check_op(const HostOp& op, int index, bool ll = false) {
  std::vector<unsigned char> w(op.bytes());
  const int in_len = op.in_kind == kSiluMul ? 2 * op.k : op.k;
  CHECK(cudaMemcpy(w.data(), op.w, w.size(), cudaMemcpyDeviceToHost));
  const std::vector<__nv_bfloat16> in = download(op.in, in_len, ll && index > 0);
  const std::vector<__nv_bfloat16> out = download(op.out, op.n, ll);
  std::vector<double> x(op.k);
  double ss = 0.0;
  for (int i = 0; i < op.k; ++i) ss += static_cast<double>(bf(in[i])) * bf(in[i]);
  const double inv = 1.0 / std::sqrt(ss / op.k + 1e-5);
  for (int i = 0; i < op.k; ++i) {
    const double v = bf(in[i]);
    if (op.in_kind == kSiluMul) {
      x[i] = round_bf(v / (1.0 + std::exp(-v)) * bf(in[op.k + i]));
    } else if (op.in_kind == kRmsNorm) {
      x[i] = round_bf(v * inv);
    } else {
      x[i] = v;
    }
  }
  const int nk = op.k / kUnitCodes;
  std::vector<double> ref(op.n);
  auto rows = [&](int first, int step) {
    for (int row = first; row < op.n; row += step) {
      double acc = 0.0;
      const int r16 = row % 16;
      for (int kk = 0; kk < nk; ++kk) {
        const unsigned char* unit =
            w.data() + (static_cast<size_t>(row / 16) * nk + kk) * kUnitBytes;
        for (int c = 0; c < kUnitCodes; ++c) {
          const int s = c / 128, cs = c % 128, t4 = cs / 32, idx = cs % 32;
          const int lane = (r16 % 8) * 4 + t4;
          const unsigned char byte = unit[s * 1024 + (r16 / 8) * 512 + 16 * lane + idx / 2];
          const int q = (byte >> (4 * (idx % 2))) & 0xF;
          const int gu = c / kGroup;
          const auto* rec =
              reinterpret_cast<const __nv_bfloat16*>(unit + kCodeBytes + ((gu / 2) * 16 + r16) * 8);
          const double wv = static_cast<double>(bf(rec[gu % 2])) * q + bf(rec[2 + gu % 2]);
          acc += wv * x[kk * kUnitCodes + c];
        }
      }
      ref[row] = acc;
    }
  };
  std::vector<std::thread> pool;
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int t = 0; t < threads; ++t) pool.emplace_back(rows, t, threads);
  for (auto& t : pool) t.join();
  double ref_ss = 0.0;
  for (int row = 0; row < op.n; ++row) ref_ss += ref[row] * ref[row];
  const double rms = std::sqrt(ref_ss / op.n);
  double err = 0.0;
  int bad = 0;
  for (int row = 0; row < op.n; ++row) {
    const double d = std::fabs(bf(out[row]) - ref[row]);
    if (!(d <= 0.01 * rms + 0.008 * std::fabs(ref[row]))) ++bad;  // NaN fails too
    if (!(d <= err)) err = d;
  }
  std::printf(
      "check product %3d (%6d x %5d, input kind %d): output rms %.4g, max |gpu - ref| %.3g "
      "(%.2f%% of rms), %d rows out of bounds\n",
      index, op.n, op.k, op.in_kind, rms, err, 100.0 * err / rms, bad);
  return bad == 0 && rms > 0.0 && std::isfinite(rms);
}

}  // namespace probe
