// GGUF weight binding: projections whose GGML type the matmul kernels run natively stay in their
// blocks (u8 rows of whole blocks); every other tensor -- float tensors, norms, the embedding
// table, and projections of other GGML types -- is dequantized on the host to the compute dtype.
// Projections fused by rows (q/k/v, gate/up) are written part by part into one buffer each.
#include <string>

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
  GgufSource(const io::GgufFile& file, Uploader& up) : file_(file), up_(up) {}

  std::int64_t device_bytes(const io::TensorBinding& b, TensorRole role) const override {
    const io::GgufTensorInfo& t = info(b);
    if (role == TensorRole::Linear && ops::ggml_matmul_supports(t.type)) {
      return static_cast<std::int64_t>(t.n_bytes);
    }
    return static_cast<std::int64_t>(t.n_elements) *
           static_cast<std::int64_t>(dtype_size(up_.compute_dtype()));
  }

  std::int64_t tied_head_bytes(const io::TensorBinding& embedding) const override {
    const io::GgufTensorInfo& t = info(embedding);
    return ops::ggml_matmul_supports(t.type) ? static_cast<std::int64_t>(t.n_bytes) : 0;
  }

  Buffer vector(const io::TensorBinding& b) override { return dense(b); }

  Linear linear(const io::TensorBinding& w, const io::TensorBinding* bias) override {
    Linear l;
    l.out = w.expected.shape.front();
    l.in = w.expected.shape.back();
    const io::GgufTensorInfo& t = info(w);
    if (ops::ggml_matmul_supports(t.type)) {
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
    if (ops::ggml_matmul_supports(t.type)) {
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
    Linear l;
    l.kind = first.kind;
    l.in = first.in;
    l.ggml_type = first.ggml_type;
    for (const LinearBinding& p : parts) l.out += p.weight->expected.shape.front();
    if (first.kind == WeightKind::Ggml) {
      l.ggml = up_.alloc(DType::U8, {l.out, first.row_bytes});
    } else {
      l.dense = up_.alloc(up_.compute_dtype(), {l.out, l.in});
    }
    if (first.has_bias) l.bias = up_.alloc(up_.compute_dtype(), {l.out});
    // Each part goes straight from the file to its rows; progress counts part by part.
    std::int64_t row0 = 0;
    for (const LinearBinding& p : parts) {
      const std::int64_t rows = p.weight->expected.shape.front();
      const Linear dst = l.rows(row0, rows);
      const io::GgufTensorInfo& t = info(*p.weight);
      if (first.kind == WeightKind::Ggml) {
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
    if (ops::ggml_matmul_supports(t.type)) {
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
};

}  // namespace

std::unique_ptr<WeightSource> make_gguf_source(const io::GgufFile& file, Uploader& uploader) {
  return std::make_unique<GgufSource>(file, uploader);
}

}  // namespace mlxn::engine::detail
