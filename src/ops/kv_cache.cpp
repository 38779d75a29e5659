// KV-cache op entry point: validate shapes and dtypes, then dispatch the backend's append kernel.
#include "mlxn/ops/kv_cache.h"

#include <string>

#include "mlxn/core/device.h"
#include "mlxn/core/error.h"
#include "ops/kv_cache_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

constexpr const char* kOp = "kv_cache_append";

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, std::string(kOp) + ": " + what);
}

void require_rank3(const char* name, const Buffer& b) {
  if (b.shape().size() != 3) {
    fail(std::string(name) + " has shape " + shape_to_string(b.shape()) + ", expected rank 3");
  }
}

}  // namespace

void kv_cache_append(CommandEncoder& enc, const Buffer& k_new, const Buffer& v_new,
                     const Buffer& positions, const Buffer& k_cache, const Buffer& v_cache,
                     bool ring) {
  detail::require_float(kOp, "k_new", k_new);
  detail::require_float(kOp, "v_new", v_new);
  detail::require_float(kOp, "k_cache", k_cache);
  detail::require_float(kOp, "v_cache", v_cache);
  detail::require_same_dtype(kOp, "v_new", v_new, k_new.dtype());
  detail::require_same_dtype(kOp, "v_cache", v_cache, k_cache.dtype());
  if (!positions.valid()) fail("positions is an empty buffer");
  detail::require_same_dtype(kOp, "positions", positions, DType::I32);
  require_rank3("k_new", k_new);
  require_rank3("k_cache", k_cache);
  const Shape& s = k_new.shape();
  const Shape& c = k_cache.shape();
  const std::int64_t n_tokens = s[0], n_kv_heads = s[1], head_dim = s[2], capacity = c[1];
  if (v_new.shape() != s) {
    fail("v_new has shape " + shape_to_string(v_new.shape()) + ", k_new " + shape_to_string(s));
  }
  if (v_cache.shape() != c) {
    fail("v_cache has shape " + shape_to_string(v_cache.shape()) + ", k_cache " +
         shape_to_string(c));
  }
  if (c[0] != n_kv_heads || c[2] != head_dim) {
    fail("cache shape " + shape_to_string(c) + " does not match k_new " + shape_to_string(s) +
         " (expected [n_kv_heads, capacity, head_dim])");
  }
  if (capacity < 1) fail("cache capacity is 0");
  detail::require_numel(kOp, "positions", positions, n_tokens);
  if (k_cache.same_storage(k_new) || v_cache.same_storage(v_new) || k_cache.same_storage(v_new) ||
      v_cache.same_storage(k_new)) {
    // Not a hard hazard in itself, but always a caller bug: the cache is state, not a temporary.
    fail("a cache buffer shares storage with the new K/V");
  }
  if (n_tokens == 0 || n_kv_heads == 0 || head_dim == 0) return;

  const Kernel& kernel = enc.device().kernels().get(
      kOp, Specialization().set("src", k_new.dtype()).set("dst", k_cache.dtype()));
  KvCacheAppendParams p{n_tokens, n_kv_heads, head_dim, capacity, ring ? 1 : 0};
  enc.dispatch(kernel,
               {Arg::in(k_new), Arg::in(v_new), Arg::in(positions), Arg::inout(k_cache),
                Arg::inout(v_cache)},
               p, kOp);
}

}  // namespace mlxn::ops
