// The sample kernel: one block per row draws one token with temperature, top-k, top-p and min-p
// (algorithm in include/mlxn/ops/sampling.h) without sorting the vocabulary: every cut is a
// prefix of the descending order, found by a radix descent over count or cumulative mass.
#include "backends/cuda/kernels/sampling_kernels.h"
#include "backends/cuda/kernels/sampling_select.cuh"

namespace mlxn::cuda {
namespace {

using namespace rowsel;

struct RowSettings {
  float temperature;
  int top_k;
  float top_p;
  float min_p;
  float u;
};

// The token of one row for temperature > 0 and a finite maximum x_max. Block-uniform: every
// value below is the same in all threads (reductions return the same result everywhere).
template <class T>
__device__ long long sample_row(Smem& sm, const T* row, long long vocab, bool vec, float x_max,
                                const RowSettings& s) {
  const float temp = s.temperature;
  const float l_max = x_max / temp;
  auto weight = [=](float x) { return expf(x / temp - l_max); };
  const bool k_on = s.top_k > 0 && s.top_k < vocab;
  const bool p_on = s.top_p > 0.0f && s.top_p < 1.0f;
  const bool m_on = s.min_p > 0.0f;
  const float m_thr = fminf(s.min_p, 1.0f);

  // Total mass (when top-k keeps everything) and the min-p cut: count and mass of w >= m_thr.
  float z = 0.0f, wm = 0.0f;
  unsigned nm = 0;
  if (!k_on || m_on) {
    for_each_chunk(row, vocab, vec, [&](long long, float x, bool ok) {
      if (!ok) return;
      const float w = weight(x);
      z += w;
      if (m_on && w >= m_thr) {
        ++nm;
        wm += w;
      }
    });
    z = block_all_reduce(z, SumOp{}, sm.redf);
    if (m_on) {
      nm = block_all_reduce(nm, SumOp{}, sm.redu);
      wm = block_all_reduce(wm, SumOp{}, sm.redf);
    }
  }

  // n: kept prefix length; wn = W(n).
  long long n = vocab;
  float wn = z;
  if (k_on) {
    const Goal g{Fit::Rank, static_cast<unsigned>(s.top_k - 1), 0.0f};
    const Descent d = descend<true>(sm, row, vocab, vec, g, weight);
    const float w = weight(ops::key_value(d.key));
    const unsigned t = g.rank - d.c;
    n = s.top_k;
    wn = d.a + static_cast<float>(t + 1) * w;
  }
  if (p_on) {
    const Goal g{Fit::MassLess, 0, s.top_p * wn};
    const Descent d = descend<true>(sm, row, vocab, vec, g, weight);
    long long np;
    float wp;
    if (d.leaf) {
      const float w = weight(ops::key_value(d.key));
      unsigned t = fitting_in_tie(g, d.a, w, d.tie);
      if (t >= d.tie) t = d.tie - 1;  // rounding only: the boundary is in this tie
      np = static_cast<long long>(d.c) + t + 1;
      wp = d.a + static_cast<float>(t + 1) * w;
    } else {
      np = d.c > 0 ? d.c : 1;
      wp = d.a;
    }
    if (np < n) {
      n = np;
      wn = wp;
    }
  }
  if (m_on && nm < n) {
    n = nm;
    wn = wm;
  }

  // Draw: rank r = min(n - 1, #{j : W(j + 1) <= u * W(n)}), then that rank's index.
  const Goal g{Fit::MassLessEq, 0, s.u * wn};
  const Descent d = descend<true>(sm, row, vocab, vec, g, weight);
  unsigned key = 0, occ = 0;
  bool located = false;
  long long r;
  if (d.leaf) {
    const float w = weight(ops::key_value(d.key));
    const unsigned t = fitting_in_tie(g, d.a, w, d.tie);
    r = static_cast<long long>(d.c) + t;
    if (r <= n - 1 && t < d.tie) {
      key = d.key;
      occ = t;
      located = true;
    }
  } else {
    r = d.c;
  }
  if (!located) {
    if (r > n - 1) r = n - 1;
    const Goal gr{Fit::Rank, static_cast<unsigned>(r), 0.0f};
    const Descent e = descend<false>(sm, row, vocab, vec, gr, weight);
    key = e.key;
    occ = gr.rank - e.c;
  }
  return find_occurrence(sm, row, vocab, vec, key, occ);
}

template <class T>
__global__ void __launch_bounds__(kMaxThreads)
    sample_kernel(const __grid_constant__ DeviceArgs args) {
  __shared__ Smem sm;
  const auto& p = params_as<ops::SampleParams>(args);
  const T* logits = static_cast<const T*>(args.ptr[0]);
  const float* temperature = static_cast<const float*>(args.ptr[1]);
  const int* top_k = static_cast<const int*>(args.ptr[2]);
  const float* top_p = static_cast<const float*>(args.ptr[3]);
  const float* min_p = static_cast<const float*>(args.ptr[4]);
  const float* u = static_cast<const float*>(args.ptr[5]);
  int* tokens = static_cast<int*>(args.ptr[6]);
  const bool vec = p.vocab % (16 / sizeof(T)) == 0 && aligned16(logits);
  for (long long r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const T* row = logits + r * p.vocab;
    const unsigned long long best = row_max_word(sm, row, p.vocab, vec);
    const float x_max = ops::key_value(static_cast<unsigned>(best >> 32));
    const RowSettings s{temperature[r], top_k[r], top_p[r], min_p[r], u[r]};
    long long token = ops::rank_word_index(best);
    if (s.temperature > 0.0f && isfinite(x_max)) {
      const long long t = sample_row(sm, row, p.vocab, vec, x_max, s);
      if (t >= 0) token = t;  // t < 0 cannot happen; argmax keeps the output a valid token
    }
    if (threadIdx.x == 0) tokens[r] = static_cast<int>(token);
  }
}

template <class T>
LaunchConfig sample_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::SampleParams>(args);
  return {reinterpret_cast<const void*>(&sample_kernel<T>), dim3(row_blocks(p.rows)),
          dim3(threads_for(p.vocab, sizeof(T))), 0};
}

}  // namespace

ConfigureFn sample_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &sample_config<float>;
    case DType::F16:
      return &sample_config<__half>;
    case DType::BF16:
      return &sample_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
