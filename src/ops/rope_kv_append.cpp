// Fused rope + KV-cache append entry point: the checks of ops::rope (on q and k, in place) and of
// ops::kv_cache_append, then one dispatch of the backend's fused kernel.
#include "mlxn/ops/rope_kv_append.h"

#include <string>

#include "mlxn/core/device.h"
#include "mlxn/core/error.h"
#include "ops/op_checks.h"
#include "ops/rope_kv_append_params.h"

namespace mlxn::ops {
namespace {

constexpr const char* kOp = "rope_kv_append";

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, std::string(kOp) + ": " + what);
}

void require_rank3(const char* name, const Buffer& b, const char* expected) {
  if (b.shape().size() != 3) {
    fail(std::string(name) + " must be " + expected + ", got " + shape_to_string(b.shape()));
  }
}

}  // namespace

void rope_kv_append(CommandEncoder& enc, const Buffer& q, const Buffer& k, const Buffer& v,
                    const Buffer& positions, const Buffer& inv_freq, RopeLayout layout,
                    float attention_scale, const Buffer& k_cache, const Buffer& v_cache,
                    bool ring) {
  detail::require_float(kOp, "q", q);
  detail::require_float(kOp, "k", k);
  detail::require_float(kOp, "v", v);
  detail::require_float(kOp, "k_cache", k_cache);
  detail::require_float(kOp, "v_cache", v_cache);
  // One dtype for q, k and v: they are the parts of one projection output.
  detail::require_same_dtype(kOp, "k", k, q.dtype());
  detail::require_same_dtype(kOp, "v", v, q.dtype());
  detail::require_same_dtype(kOp, "v_cache", v_cache, k_cache.dtype());
  if (!positions.valid()) fail("positions is an empty buffer");
  detail::require_same_dtype(kOp, "positions", positions, DType::I32);
  require_rank3("q", q, "[n_tokens, n_heads, head_dim]");
  require_rank3("k", k, "[n_tokens, n_kv_heads, head_dim]");
  require_rank3("k_cache", k_cache, "[n_kv_heads, capacity, head_dim]");
  const Shape& s = k.shape();
  const Shape& c = k_cache.shape();
  const std::int64_t n_tokens = q.shape()[0], n_heads = q.shape()[1], head_dim = q.shape()[2];
  const std::int64_t n_kv_heads = s[1], capacity = c[1];
  if (s[0] != n_tokens || s[2] != head_dim) {
    fail("k has shape " + shape_to_string(s) + ", q " + shape_to_string(q.shape()) +
         " (expected the same n_tokens and head_dim)");
  }
  if (v.shape() != s) {
    fail("v has shape " + shape_to_string(v.shape()) + ", k " + shape_to_string(s));
  }
  if (v_cache.shape() != c) {
    fail("v_cache has shape " + shape_to_string(v_cache.shape()) + ", k_cache " +
         shape_to_string(c));
  }
  if (c[0] != n_kv_heads || c[2] != head_dim) {
    fail("cache shape " + shape_to_string(c) + " does not match k " + shape_to_string(s) +
         " (expected [n_kv_heads, capacity, head_dim])");
  }
  if (capacity < 1) fail("cache capacity is 0");
  detail::require_numel(kOp, "positions", positions, n_tokens);
  const std::int64_t rotary_dim = detail::rope_rotary_dim(kOp, inv_freq, head_dim, attention_scale);
  // Each of q, k, v is rotated or read in place; an overlap would make one clobber another.
  if (detail::overlap(q, k) || detail::overlap(q, v) || detail::overlap(k, v)) fail("q, k and v must not overlap");
  for (const Buffer* x : {&q, &k, &v}) {
    if (k_cache.same_storage(*x) || v_cache.same_storage(*x)) {
      // As in kv_cache_append: the cache is state, not a temporary; sharing is a caller bug.
      fail("a cache buffer shares storage with q, k or v");
    }
  }
  // The fused kernel writes both caches at once: which write lands last is not the sequence's.
  if (detail::overlap(k_cache, v_cache)) fail("k_cache and v_cache overlap");
  if (n_tokens == 0 || n_heads + n_kv_heads == 0) return;

  const Kernel& kernel = enc.device().kernels().get(
      kOp, Specialization().set("src", q.dtype()).set("dst", k_cache.dtype()));
  RopeKvAppendParams p{};
  p.n_tokens = n_tokens;
  p.n_heads = n_heads;
  p.n_kv_heads = n_kv_heads;
  p.head_dim = head_dim;
  p.rotary_dim = rotary_dim;
  p.capacity = capacity;
  p.scale = attention_scale;
  p.layout = layout == RopeLayout::Neox ? kRopeNeox : kRopeInterleaved;
  p.ring = ring ? 1 : 0;
  enc.dispatch(kernel,
               {Arg::inout(q), Arg::inout(k), Arg::in(v), Arg::in(positions), Arg::in(inv_freq),
                Arg::inout(k_cache), Arg::inout(v_cache)},
               p, kOp);
}

}  // namespace mlxn::ops
