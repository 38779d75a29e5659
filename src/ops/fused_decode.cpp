// The fused decode step's entry points: the plan (checks, device table, workspace) and one step.
#include "mlxn/ops/fused_decode.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "mlxn/core/device.h"
#include "mlxn/core/error.h"
#include "ops/fused_decode_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

constexpr const char* kPlanOp = "make_fused_decode_plan";
constexpr const char* kStepOp = "fused_decode_step";

static_assert(kFdMaxBlocks == kFusedDecodeMaxBlocks && kFdUnitCodes == kFusedDecodeUnitCodes &&
              kFdMaxK == kFusedDecodeMaxK && kFdHeadDim == kFusedDecodeHeadDim &&
              kFdMaxGroup == kFusedDecodeMaxGroup);

[[noreturn]] void unsupported(const std::string& what) {
  throw Error(ErrorKind::Unsupported, std::string(kPlanOp) + ": " + what);
}
[[noreturn]] void invalid(const char* op, const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + what);
}

std::uint64_t address(const Buffer& b) {
  return reinterpret_cast<std::uint64_t>(b.raw_ptr());
}

// The kernel reads codes and scales by 16-byte bulk copies and vectors by 16-byte loads.
void require_aligned16(const char* op, const std::string& name, const Buffer& b) {
  if (address(b) % 16 != 0) {
    throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + name +
                                                " must start at a 16-byte boundary (a view at "
                                                "byte offset " +
                                                std::to_string(b.offset()) + ")");
  }
}

// A matrix of the plan: fits the fused step, has the rows and columns the shape says, and its
// unit scales are the right size.
FusedDecodeMatrixRef checked_matrix(const std::string& name, const FusedDecodeMatrix& m,
                                    std::int64_t n, std::int64_t k) {
  const std::string problem = fused_decode_weight_problem(m.weight);
  if (!problem.empty()) unsupported(name + ": " + problem);
  const std::int64_t rows = m.weight.scales.shape()[0];
  const std::int64_t cols = m.weight.scales.shape()[1] * m.weight.group_size;
  if (rows != n || cols != k) {
    invalid(kPlanOp, name + " is [" + std::to_string(rows) + ", " + std::to_string(cols) +
                         "], expected [" + std::to_string(n) + ", " + std::to_string(k) + "]");
  }
  if (!m.unit_scales.valid() || m.unit_scales.dtype() != DType::BF16 ||
      m.unit_scales.numel() != fused_decode_scales_elems(n, k)) {
    invalid(kPlanOp, name + ": unit scales must be bf16 with " +
                         std::to_string(fused_decode_scales_elems(n, k)) +
                         " elements (fused_decode_scales)");
  }
  require_aligned16(kPlanOp, name + " codes", m.weight.packed);
  require_aligned16(kPlanOp, name + " unit scales", m.unit_scales);
  return FusedDecodeMatrixRef{address(m.weight.packed), address(m.unit_scales), n, k};
}

void check_vector(const std::string& name, const Buffer& b, std::int64_t n) {
  if (!b.valid() || b.dtype() != DType::BF16 || b.numel() != n) {
    invalid(kPlanOp, name + " must be bf16 with " + std::to_string(n) + " elements");
  }
  require_aligned16(kPlanOp, name, b);
}

}  // namespace

std::size_t FusedDecodePlan::bytes() const {
  return (table_.valid() ? table_.size_bytes() : 0) +
         (workspace_.valid() ? workspace_.size_bytes() : 0);
}

namespace {
// The step's kernel: one a count of int8 input planes (the products' inputs).
Specialization step_kernel(FusedDecodeInputs inputs) {
  return Specialization().set("planes", inputs == FusedDecodeInputs::Int8 ? 1 : 2);
}
}  // namespace

FusedDecodePlan make_fused_decode_plan(Device& device, const FusedDecodeShape& shape,
                                       std::vector<FusedDecodeLayer> layers, FusedDecodeMatrix head,
                                       Buffer final_norm) {
  if (device.backend() != Backend::Cuda) unsupported("the fused decode step runs on CUDA only");
  try {
    device.kernels().get(kStepOp, step_kernel(shape.inputs));
  } catch (const Error&) {
    unsupported("the GPU is older than sm_90 (the step needs bulk copies and mbarriers)");
  }
  if (shape.rope_layout != RopeLayout::Neox) unsupported("interleaved RoPE pairs");
  const FusedDecodeShape& s = shape;
  if (s.hidden < 1 || s.n_heads < 1 || s.n_kv_heads < 1 || s.intermediate < 1 || s.vocab < 1) {
    invalid(kPlanOp, "every dimension of the shape must be positive");
  }
  if (layers.empty()) invalid(kPlanOp, "no layers");
  if (s.head_dim != kFusedDecodeHeadDim) {
    unsupported("head_dim " + std::to_string(s.head_dim) + " (the fused step handles " +
                std::to_string(kFusedDecodeHeadDim) + ")");
  }
  if (s.n_heads % s.n_kv_heads != 0 || s.n_heads / s.n_kv_heads > kFusedDecodeMaxGroup) {
    unsupported(std::to_string(s.n_heads) + " query heads over " + std::to_string(s.n_kv_heads) +
                " KV heads (the fused step handles groups of up to " +
                std::to_string(kFusedDecodeMaxGroup) + ")");
  }
  if (s.n_kv_heads > kFusedDecodeMaxBlocks) {
    unsupported(std::to_string(s.n_kv_heads) + " KV heads (more than the blocks of a launch)");
  }
  const std::int64_t qkv_rows = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
  const std::int64_t q_width = s.n_heads * s.head_dim;

  std::vector<unsigned char> table(sizeof(FusedDecodeTableHead) +
                                   layers.size() * sizeof(FusedDecodeLayerRef));
  FusedDecodeTableHead top{};
  top.head = checked_matrix("head", head, s.vocab, s.hidden);
  check_vector("final norm", final_norm, s.hidden);
  top.final_norm = address(final_norm);
  std::memcpy(table.data(), &top, sizeof(top));

  std::int64_t capacity = -1;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const FusedDecodeLayer& L = layers[i];
    const std::string at = "layer " + std::to_string(i) + " ";
    FusedDecodeLayerRef r{};
    r.qkv = checked_matrix(at + "qkv", L.qkv, qkv_rows, s.hidden);
    r.o = checked_matrix(at + "o", L.o, s.hidden, q_width);
    r.gate_up = checked_matrix(at + "gate_up", L.gate_up, 2 * s.intermediate, s.hidden);
    r.down = checked_matrix(at + "down", L.down, s.hidden, s.intermediate);
    check_vector(at + "attn_norm", L.attn_norm, s.hidden);
    check_vector(at + "ffn_norm", L.ffn_norm, s.hidden);
    for (const Buffer* c : {&L.k_cache, &L.v_cache}) {
      const Shape& cs = c->valid() ? c->shape() : Shape{};
      if (!c->valid() || c->dtype() != DType::BF16 || cs.size() != 3 || cs[0] != s.n_kv_heads ||
          cs[2] != s.head_dim) {
        unsupported(at + "cache: must be bf16 [" + std::to_string(s.n_kv_heads) + ", capacity, " +
                    std::to_string(s.head_dim) + "], got " +
                    (c->valid() ? std::string(dtype_name(c->dtype())) + " " + shape_to_string(cs)
                                : std::string("no buffer")));
      }
      if (capacity >= 0 && cs[1] != capacity) {
        invalid(kPlanOp, at + "cache holds " + std::to_string(cs[1]) + " positions, layer 0's " +
                             std::to_string(capacity));
      }
      require_aligned16(kPlanOp, at + "cache", *c);
      capacity = cs[1];
    }
    if (detail::overlap(L.k_cache, L.v_cache)) invalid(kPlanOp, at + "k and v caches overlap");
    r.attn_norm = address(L.attn_norm);
    r.ffn_norm = address(L.ffn_norm);
    r.k_cache = address(L.k_cache);
    r.v_cache = address(L.v_cache);
    std::memcpy(table.data() + sizeof(FusedDecodeTableHead) + i * sizeof(FusedDecodeLayerRef), &r,
                sizeof(r));
  }

  const FusedDecodeWorkspace w =
      fused_decode_workspace(static_cast<std::int64_t>(layers.size()), s.n_heads, s.n_kv_heads,
                             s.head_dim, s.intermediate, kFdMaxBlocks);
  FusedDecodePlan plan;
  plan.shape_ = shape;
  plan.capacity_ = capacity;
  plan.table_ = device.alloc(DType::U8, {static_cast<std::int64_t>(table.size())});
  plan.table_.write(table.data(), table.size());
  plan.workspace_ = device.alloc(DType::U8, {w.bytes});  // zero-filled: every counter at rest
  plan.layers_ = std::move(layers);
  plan.head_ = std::move(head);
  plan.final_norm_ = std::move(final_norm);
  return plan;
}

void fused_decode_step(CommandEncoder& enc, const FusedDecodePlan& plan, const Buffer& x,
                       std::int64_t position, const Buffer& inv_freq, float rope_scale,
                       float attn_scale, const Buffer& logits) {
  if (!plan.valid()) invalid(kStepOp, "empty plan");
  const FusedDecodeShape& s = plan.shape();
  if (!x.valid() || x.dtype() != DType::BF16 || x.numel() != s.hidden) {
    invalid(kStepOp, "x must be bf16 with " + std::to_string(s.hidden) + " elements");
  }
  if (!logits.valid() || logits.dtype() != DType::BF16 || logits.numel() != s.vocab) {
    invalid(kStepOp, "logits must be bf16 with " + std::to_string(s.vocab) + " elements");
  }
  if (!inv_freq.valid() || inv_freq.dtype() != DType::F32 || inv_freq.numel() != s.head_dim / 2) {
    invalid(kStepOp, "inv_freq must be f32 with " + std::to_string(s.head_dim / 2) +
                         " elements (RoPE over the whole head)");
  }
  if (position < 0 || position >= plan.capacity()) {
    invalid(kStepOp, "position " + std::to_string(position) + " outside the cache's " +
                         std::to_string(plan.capacity()) + " positions");
  }
  if (detail::overlap(x, logits)) invalid(kStepOp, "x and logits overlap");
  require_aligned16(kStepOp, "x", x);
  FusedDecodeParams p{};
  p.n_layers = plan.n_layers();
  p.hidden = s.hidden;
  p.n_heads = s.n_heads;
  p.n_kv_heads = s.n_kv_heads;
  p.head_dim = s.head_dim;
  p.intermediate = s.intermediate;
  p.vocab = s.vocab;
  p.capacity = plan.capacity();
  p.position = position;
  p.eps = s.rms_eps;
  p.attn_scale = attn_scale;
  p.rope_scale = rope_scale;
  const Kernel& kernel = enc.device().kernels().get(kStepOp, step_kernel(s.inputs));
  // The caches are read and written through the table, where automatic barriers cannot see
  // them: full barriers around the step order it after every earlier write of a cache (a
  // prefill's append) and before every later read, also when a call is replayed as a graph.
  enc.barrier();
  enc.dispatch(kernel,
               {Arg::in(plan.table_), Arg::inout(x), Arg::out(logits), Arg::inout(plan.workspace_),
                Arg::in(inv_freq)},
               p, kStepOp);
  enc.barrier();
}

}  // namespace mlxn::ops
