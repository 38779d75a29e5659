// RoPE: the host-side frequency tables of transformers' rope types, and the rope op entry point.
#include "mlxn/ops/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "mlxn/core/device.h"
#include "ops/op_checks.h"
#include "ops/rope_params.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, "rope: " + what);
}

// theta^(-2i/dim) for i < dim/2: the unscaled table every scheme starts from.
std::vector<double> default_inv_freq(double theta, std::int64_t dim) {
  std::vector<double> f(static_cast<std::size_t>(dim / 2));
  for (std::size_t i = 0; i < f.size(); ++i) {
    f[i] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(dim));
  }
  return f;
}

void llama3(const RopeConfig& c, std::vector<double>& f) {
  if (c.original_max_position_embeddings <= 0) {
    fail("llama3 needs original_max_position_embeddings");
  }
  if (!(c.high_freq_factor > c.low_freq_factor)) fail("llama3 needs high_freq_factor > low");
  const double old_len = static_cast<double>(c.original_max_position_embeddings);
  const double low_wavelen = old_len / c.low_freq_factor;
  const double high_wavelen = old_len / c.high_freq_factor;
  for (double& v : f) {
    const double wavelen = 2.0 * std::numbers::pi / v;
    if (wavelen > low_wavelen) {
      v /= c.factor;  // low frequencies: fully interpolated
    } else if (wavelen >= high_wavelen) {
      // Medium band: blend between interpolated and original by how many turns fit.
      const double smooth =
          (old_len / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
      v = (1.0 - smooth) * v / c.factor + smooth * v;
    }  // high frequencies: unchanged
  }
}

double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

float yarn(const RopeConfig& c, std::vector<double>& f) {
  const std::int64_t dim = c.rotary_dim;
  const std::int64_t orig = c.original_max_position_embeddings > 0
                                ? c.original_max_position_embeddings
                                : c.max_position_embeddings;
  if (orig <= 0) fail("yarn needs original_max_position_embeddings or max_position_embeddings");
  double attention = 0.0;
  if (c.attention_factor) {
    attention = *c.attention_factor;
  } else if (c.mscale != 0.0 && c.mscale_all_dim != 0.0) {
    attention = yarn_mscale(c.factor, c.mscale) / yarn_mscale(c.factor, c.mscale_all_dim);
  } else {
    attention = yarn_mscale(c.factor, 1.0);
  }
  // The dim whose wavelength fits `rotations` turns into the original context.
  const auto correction_dim = [&](double rotations) {
    return static_cast<double>(dim) *
           std::log(static_cast<double>(orig) / (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(c.theta));
  };
  double low = correction_dim(c.beta_fast);
  double high = correction_dim(c.beta_slow);
  if (c.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // avoids a zero-width ramp
  for (std::size_t i = 0; i < f.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation = 1.0 - ramp;  // weight of the unscaled frequency
    f[i] = f[i] / c.factor * (1.0 - extrapolation) + f[i] * extrapolation;
  }
  return static_cast<float>(attention);
}

float longrope(const RopeConfig& c, std::int64_t seq_len, std::vector<double>& f) {
  const std::size_t half = f.size();
  if (c.short_factor.size() != half || c.long_factor.size() != half) {
    fail("longrope needs short_factor and long_factor of rotary_dim / 2 = " + std::to_string(half) +
         " values");
  }
  // Phi-3 raises max_position_embeddings and keeps the pretrained value as the original; their
  // ratio, not `factor`, sets the attention scaling then.
  std::int64_t orig = c.max_position_embeddings;
  double factor = c.factor;
  if (c.original_max_position_embeddings > 0) {
    orig = c.original_max_position_embeddings;
    if (c.max_position_embeddings > 0) {
      factor = static_cast<double>(c.max_position_embeddings) / static_cast<double>(orig);
    }
  }
  if (orig <= 0) fail("longrope needs original_max_position_embeddings or max_position_embeddings");
  double attention = 1.0;
  if (c.attention_factor) {
    attention = *c.attention_factor;
  } else if (factor > 1.0) {
    attention = std::sqrt(1.0 + std::log(factor) / std::log(static_cast<double>(orig)));
  }
  const std::vector<double>& ext = seq_len > orig ? c.long_factor : c.short_factor;
  for (std::size_t i = 0; i < half; ++i) {
    if (!(ext[i] > 0.0)) fail("longrope factors must be positive");
    f[i] /= ext[i];
  }
  return static_cast<float>(attention);
}

}  // namespace

RopeTable rope_inv_freq(const RopeConfig& c, std::int64_t seq_len) {
  if (c.rotary_dim <= 0 || c.rotary_dim % 2 != 0) {
    fail("rotary_dim must be positive and even, got " + std::to_string(c.rotary_dim));
  }
  if (!(c.theta > 1.0)) fail("theta must be > 1");
  if (!(c.factor > 0.0)) fail("factor must be > 0");
  RopeTable table;
  std::vector<double> f;
  switch (c.scaling) {
    case RopeScaling::Default:
      f = default_inv_freq(c.theta, c.rotary_dim);
      break;
    case RopeScaling::Linear:
      f = default_inv_freq(c.theta, c.rotary_dim);
      for (double& v : f) v /= c.factor;
      break;
    case RopeScaling::DynamicNtk: {
      if (c.max_position_embeddings <= 0) fail("dynamic NTK needs max_position_embeddings");
      if (c.rotary_dim < 4) fail("dynamic NTK needs rotary_dim >= 4");
      // Below the trained length the base is unchanged; past it the base grows with seq_len.
      const double max_pos = static_cast<double>(c.max_position_embeddings);
      const double len = std::max(static_cast<double>(seq_len), max_pos);
      const double d = static_cast<double>(c.rotary_dim);
      const double base =
          c.theta * std::pow(c.factor * len / max_pos - (c.factor - 1.0), d / (d - 2));
      f = default_inv_freq(base, c.rotary_dim);
      break;
    }
    case RopeScaling::Yarn:
      f = default_inv_freq(c.theta, c.rotary_dim);
      table.attention_scale = yarn(c, f);
      break;
    case RopeScaling::LongRope:
      f = default_inv_freq(c.theta, c.rotary_dim);
      table.attention_scale = longrope(c, seq_len, f);
      break;
    case RopeScaling::Llama3:
      f = default_inv_freq(c.theta, c.rotary_dim);
      llama3(c, f);
      break;
  }
  table.inv_freq.assign(f.begin(), f.end());
  return table;
}

void rope(CommandEncoder& enc, const Buffer& x, const Buffer& positions, const Buffer& inv_freq,
          const Buffer& out, RopeLayout layout, float attention_scale) {
  const char* op = "rope";
  detail::require_float(op, "x", x);
  detail::require_same_dtype(op, "out", out, x.dtype());
  if (x.shape().size() != 3) {
    fail("x must be [n_tokens, n_heads, head_dim], got " + shape_to_string(x.shape()));
  }
  const std::int64_t n_tokens = x.shape()[0], n_heads = x.shape()[1], head_dim = x.shape()[2];
  detail::require_numel(op, "out", out, x.numel());
  if (!positions.valid() || positions.dtype() != DType::I32) fail("positions must be i32");
  detail::require_numel(op, "positions", positions, n_tokens);
  const std::int64_t rotary_dim = detail::rope_rotary_dim(op, inv_freq, head_dim, attention_scale);
  // Partial overlap would let one head's writes clobber another's unread input.
  const bool same = x.same_storage(out) && x.offset() == out.offset();
  if (!same && detail::overlap(x, out)) fail("out must be x itself or not overlap it");
  if (x.numel() == 0) return;
  const Kernel& k = enc.device().kernels().get(op, x.dtype());
  RopeParams p{};
  p.n_tokens = n_tokens;
  p.n_heads = n_heads;
  p.head_dim = head_dim;
  p.rotary_dim = rotary_dim;
  p.x_token_stride = n_heads * head_dim;
  p.out_token_stride = n_heads * head_dim;
  p.scale = attention_scale;
  p.layout = layout == RopeLayout::Neox ? kRopeNeox : kRopeInterleaved;
  if (same) {
    enc.dispatch(k, {Arg::in(x), Arg::in(positions), Arg::in(inv_freq), Arg::inout(out)}, p, op);
  } else {
    enc.dispatch(k, {Arg::in(x), Arg::in(positions), Arg::in(inv_freq), Arg::out(out)}, p, op);
  }
}

}  // namespace mlxn::ops
