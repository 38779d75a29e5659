// GGUF weight binding: projections whose GGML type the matmul kernels run natively stay in their
// blocks (u8 rows of whole blocks) -- except Q4_0 / Q8_0 projections on CUDA, repacked exactly to
// MLX affine form (ggml_repack.h) for the MLX mat-vec kernels' aligned rows; every other tensor --
// float tensors, norms, the embedding table, and projections of other GGML types -- is
// dequantized on the host to the compute dtype. Projections fused by rows (q/k/v, gate/up) are
// written part by part into one buffer each.
#include <optional>
#include <string>
#include <unordered_map>

#include "fused_projections.h"
#include "ggml_repack.h"
#include "mlxn/core/error.h"
#include "mlxn/io/ggml_dequant.h"
#include "mlxn/ops/ggml_matmul.h"
#include "weight_source.h"

namespace mlxn::engine::detail {

namespace {

// "f32, f16, ..." -- the types the host dequantizer handles, for error messages.
std::string dequantizable_types() {
  std::string out;
  for (std::uint32_t id = 0; id < io::kGgmlTypeCount; ++id) {
    const auto type = io::ggml_type_from_id(id);
    if (!type || !io::ggml_can_dequantize(*type)) continue;
    if (!out.empty()) out += ", ";
    out += io::ggml_type_name(*type);
  }
  return out;
}

class GgufSource final : public WeightSource {
 public:
  GgufSource(const io::GgufFile& file, Uploader& up, Backend layout)
      : file_(file), up_(up), layout_(layout) {}

  std::int64_t device_bytes(const io::TensorBinding& b, TensorRole role) const override {
    const io::GgufTensorInfo& t = info(b);
    // Stacked experts ([experts, out, in]) keep their blocks: only 2-D projections are repacked.
    if (role == TensorRole::Linear && b.expected.shape.size() == 2) {
      if (const auto f = repacked(t)) return repacked_bytes(*f, t);
    }
    if (role == TensorRole::Linear && ops::ggml_matmul_supports(t.type)) {
      return static_cast<std::int64_t>(t.n_bytes);
    }
    return static_cast<std::int64_t>(t.n_elements) *
           static_cast<std::int64_t>(dtype_size(up_.compute_dtype()));
  }

  std::int64_t tied_head_bytes(const io::TensorBinding& embedding) const override {
    const io::GgufTensorInfo& t = info(embedding);
    if (const auto f = repacked(t)) return repacked_bytes(*f, t);
    return ops::ggml_matmul_supports(t.type) ? static_cast<std::int64_t>(t.n_bytes) : 0;
  }

  Buffer vector(const io::TensorBinding& b) override { return dense(b); }

  Linear linear(const io::TensorBinding& w, const io::TensorBinding* bias) override {
    Linear l;
    l.out = w.expected.shape.front();
    l.in = w.expected.shape.back();
    const io::GgufTensorInfo& t = info(w);
    if (repacked(t)) {
      l.kind = WeightKind::MlxQuant;
      l.quant = mlx(t);
    } else if (ops::ggml_matmul_supports(t.type)) {
      l.kind = WeightKind::Ggml;
      l.ggml_type = t.type;
      l.ggml = blocks(t, {l.out});
    } else {
      l.kind = WeightKind::Dense;
      l.dense = dense(w);
    }
    if (bias) l.bias = dense(*bias);
    return l;
  }

  LinearFormat linear_format(const LinearBinding& b) const override {
    const io::TensorBinding& w = *b.weight;
    const io::GgufTensorInfo& t = info(w);
    LinearFormat f;
    f.out = w.expected.shape.front();
    f.in = w.expected.shape.back();
    f.has_bias = b.bias != nullptr;
    if (const auto r = repacked(t)) {
      // Fuses with parts of the same bits: a Q8_0 part whose bias overflows stays GGML and
      // so apart, and Q4_0 never stacks with Q8_0.
      f.kind = WeightKind::MlxQuant;
      f.dtype = DType::F16;
      f.bits = r->bits;
      f.group_size = r->group_size;
    } else if (ops::ggml_matmul_supports(t.type)) {
      f.kind = WeightKind::Ggml;
      f.dtype = DType::U8;
      f.ggml_type = t.type;
      f.row_bytes = static_cast<std::int64_t>(io::ggml_row_size(t.type, t.dims.front()));
    } else {
      f.kind = WeightKind::Dense;  // dequantized: parts of any dequantizable types stack
      f.dtype = up_.compute_dtype();
    }
    return f;
  }

  Linear fused_linear(std::span<const LinearBinding> parts) override {
    const LinearFormat first = linear_format(parts.front());
    const Linear l = alloc_fused(up_, first, parts);
    // Each part goes straight from the file to its rows; progress counts part by part.
    std::int64_t row0 = 0;
    for (const LinearBinding& p : parts) {
      const std::int64_t rows = p.weight->expected.shape.front();
      const Linear dst = l.rows(row0, rows);
      const io::GgufTensorInfo& t = info(*p.weight);
      if (first.kind == WeightKind::MlxQuant) {
        // The part's rows of packed codes, scales and biases: row views of the fused weight.
        const std::optional<MlxRepackFormat> r = repacked(t);
        if (!r || r->bits != first.bits) {
          fail(ErrorKind::InvalidArgument, t.name,
               "GGML " + io::ggml_type_name(t.type) + " cannot be repacked into the " +
                   std::to_string(first.bits) + "-bit MLX projection it is fused into");
        }
        write_ggml_repacked(dst.quant, t.type, file_.tensor_data(t),
                            static_cast<std::int64_t>(t.dims.front()));
        up_.finish(dst.quant);
      } else if (first.kind == WeightKind::Ggml) {
        const std::span<const std::byte> data = file_.tensor_data(t);
        if (data.size() != dst.ggml.size_bytes()) {
          fail(ErrorKind::Format, t.name,
               std::to_string(data.size()) + " bytes do not fill its " + std::to_string(rows) +
                   " rows of the projection it is fused into");
        }
        Buffer blocks = dst.ggml;
        blocks.write(data.data(), data.size());
        up_.finish(blocks);
      } else {
        write_dequantized(dst.dense, *p.weight);
      }
      if (p.bias) write_dequantized(dst.bias, *p.bias);
      row0 += rows;
    }
    return l;
  }

  ExpertLinear stacked_experts(const io::TensorBinding& w) override {
    const Shape& s = w.expected.shape;
    if (s.size() != 3) {
      fail(ErrorKind::Format, w.stored_name,
           "expert weights must be [experts, out, in], found " + shape_to_string(s));
    }
    ExpertLinear e;
    e.n_experts = s[0];
    e.out = s[1];
    e.in = s[2];
    const io::GgufTensorInfo& t = info(w);
    if (ops::ggml_matmul_supports(t.type)) {
      e.kind = WeightKind::Ggml;
      e.ggml_type = t.type;
      e.ggml = blocks(t, {e.n_experts, e.out});
    } else {
      e.kind = WeightKind::Dense;
      e.dense = dense(w);
    }
    return e;
  }

  ExpertLinear per_expert(std::span<const io::TensorBinding* const> experts) override {
    // check_gguf_weights always binds the stacked *_exps tensors.
    fail(ErrorKind::Unsupported, experts.front()->stored_name,
         "GGUF stores experts stacked; per-expert tensors are not expected");
  }

  EmbeddingWeights embedding(const io::TensorBinding& w) override {
    // No GGML row-lookup kernel: the table is dequantized whatever its type.
    EmbeddingWeights e;
    e.dense = dense(w);
    return e;
  }

  Linear tied_head(const io::TensorBinding& w, const EmbeddingWeights& e) override {
    Linear l;
    l.out = w.expected.shape.front();
    l.in = w.expected.shape.back();
    const io::GgufTensorInfo& t = info(w);
    if (repacked(t)) {
      // As any other Q4_0 / Q8_0 projection on CUDA; the table itself stays dequantized.
      l.kind = WeightKind::MlxQuant;
      l.quant = mlx(t);
    } else if (ops::ggml_matmul_supports(t.type)) {
      // The blocks are smaller than the dequantized table and the matmul reads them natively.
      l.kind = WeightKind::Ggml;
      l.ggml_type = t.type;
      l.ggml = blocks(t, {l.out});
    } else {
      l.kind = WeightKind::Dense;
      l.dense = e.dense;
    }
    return l;
  }

 private:
  [[noreturn]] void fail(ErrorKind kind, const std::string& tensor, const std::string& what) const {
    throw Error(kind, file_.name() + ": tensor '" + tensor + "': " + what);
  }

  const io::GgufTensorInfo& info(const io::TensorBinding& b) const {
    const io::GgufTensorInfo* t = file_.find_tensor(b.stored_name);
    if (!t) fail(ErrorKind::Format, b.stored_name, "missing");
    return *t;
  }

  // The MLX form a projection stored as `t` takes on this layout's backend, or nullopt when it
  // keeps its GGML blocks: another type, another backend, or a block whose bias does not fit f16
  // exactly. The scan of the tensor's scales is done once (linear_format, device_bytes and the
  // upload all ask).
  std::optional<MlxRepackFormat> repacked(const io::GgufTensorInfo& t) const {
    if (!repacks_ggml(layout_, t.type)) return std::nullopt;
    auto it = exact_.find(&t);
    if (it == exact_.end()) {
      it = exact_.emplace(&t, ggml_repack_exact(t.type, file_.tensor_data(t))).first;
    }
    return it->second ? ggml_repack_format(t.type) : std::nullopt;
  }

  static std::int64_t repacked_bytes(MlxRepackFormat f, const io::GgufTensorInfo& t) {
    return mlx_repacked_bytes(f, static_cast<std::int64_t>(t.n_elements));
  }

  // The tensor repacked to MLX affine form (repacked(t) must hold): [rows, ...] as the blocks.
  ops::QuantizedWeight mlx(const io::GgufTensorInfo& t) {
    return up_.upload_ggml_repacked(t.type, file_.tensor_data(t),
                                    static_cast<std::int64_t>(t.dims.front()));
  }

  // The tensor's blocks as u8 [lead..., row_bytes]; one row is ne[0] elements.
  Buffer blocks(const io::GgufTensorInfo& t, Shape lead) {
    const auto row_bytes = io::ggml_row_size(t.type, t.dims.front());
    lead.push_back(static_cast<std::int64_t>(row_bytes));
    return up_.upload_bytes(file_.tensor_data(t), DType::U8, std::move(lead));
  }

  // The tensor of `b`, checked to be one the host can dequantize.
  const io::GgufTensorInfo& dequantizable(const io::TensorBinding& b) const {
    const io::GgufTensorInfo& t = info(b);
    if (!io::ggml_can_dequantize(t.type)) {
      fail(ErrorKind::Unsupported, t.name,
           "GGML type " + io::ggml_type_name(t.type) +
               " cannot be dequantized (supported: " + dequantizable_types() + ")");
    }
    return t;
  }

  Buffer dense(const io::TensorBinding& b) {
    const io::GgufTensorInfo& t = dequantizable(b);
    return up_.upload_ggml_dequantized(t.type, file_.tensor_data(t),
                                       static_cast<std::int64_t>(t.dims.front()), b.expected.shape);
  }

  // The tensor of `b` dequantized into `dst` (rows of a fused buffer); counted for progress.
  void write_dequantized(const Buffer& dst, const io::TensorBinding& b) {
    const io::GgufTensorInfo& t = dequantizable(b);
    if (static_cast<std::int64_t>(t.n_elements) != dst.numel()) {
      fail(ErrorKind::Format, t.name,
           std::to_string(t.n_elements) + " elements do not fill its " +
               shape_to_string(dst.shape()) + " rows of the projection it is fused into");
    }
    write_ggml_dequantized(dst, 0, t.type, file_.tensor_data(t),
                           static_cast<std::int64_t>(t.dims.front()));
    up_.finish(dst);
  }

  const io::GgufFile& file_;
  Uploader& up_;
  Backend layout_;  // whose weight layout to build (repacks_ggml)
  mutable std::unordered_map<const io::GgufTensorInfo*, bool> exact_;  // ggml_repack_exact
};

}  // namespace

std::unique_ptr<WeightSource> make_gguf_source(const io::GgufFile& file, Uploader& uploader) {
  return make_gguf_source(file, uploader, uploader.device().backend());
}

std::unique_ptr<WeightSource> make_gguf_source(const io::GgufFile& file, Uploader& uploader,
                                               Backend layout) {
  return std::make_unique<GgufSource>(file, uploader, layout);
}

}  // namespace mlxn::engine::detail
