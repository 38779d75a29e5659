// Safetensors weight binding (Hugging Face and mlx-lm): float tensors converted to the compute
// dtype, MLX-quantized modules uploaded as stored (packed u32 codes, scales and biases),
// projections fused by rows (q/k/v, gate/up) uploaded part by part into one buffer each, and
// Hugging Face per-expert MoE tensors stacked into one buffer per projection.
#include <string>
#include <vector>

#include "fused_projections.h"
#include "mlxn/core/error.h"
#include "mlxn/io/mlx_quant_config.h"
#include "weight_source.h"

namespace mlxn::engine::detail {

namespace {

// The tensors of one MLX-quantized module.
struct QuantTensors {
  const io::TensorView* packed;
  const io::TensorView* scales;
  const io::TensorView* biases;
  io::QuantParams params;
};

class SafetensorsSource final : public WeightSource {
 public:
  SafetensorsSource(const io::SafetensorsModel& model, Uploader& up) : model_(model), up_(up) {}

  std::int64_t device_bytes(const io::TensorBinding& b, TensorRole) const override {
    if (b.quant) {
      const QuantTensors q = quant(b);
      return static_cast<std::int64_t>(q.packed->size_bytes() + q.scales->size_bytes() +
                                       q.biases->size_bytes());
    }
    return shape_numel(b.expected.shape) *
           static_cast<std::int64_t>(dtype_size(up_.compute_dtype()));
  }

  // A tied head reuses the table's buffers.
  std::int64_t tied_head_bytes(const io::TensorBinding&) const override { return 0; }

  Buffer vector(const io::TensorBinding& b) override { return dense(b); }

  Linear linear(const io::TensorBinding& w, const io::TensorBinding* bias) override {
    Linear l;
    l.out = w.expected.shape.front();
    l.in = w.expected.shape.back();
    if (w.quant) {
      l.kind = WeightKind::MlxQuant;
      l.quant = upload_quant(w);
    } else {
      l.kind = WeightKind::Dense;
      l.dense = dense(w);
    }
    if (bias) l.bias = dense(*bias);
    return l;
  }

  LinearFormat linear_format(const LinearBinding& b) const override {
    const io::TensorBinding& w = *b.weight;
    LinearFormat f;
    f.out = w.expected.shape.front();
    f.in = w.expected.shape.back();
    f.has_bias = b.bias != nullptr;
    if (w.quant) {
      const QuantTensors q = quant(w);
      f.kind = WeightKind::MlxQuant;
      f.dtype = *io::to_dtype(q.scales->dtype);
      f.bits = q.params.bits;
      f.group_size = q.params.group_size;
    } else {
      f.kind = WeightKind::Dense;
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
      if (first.kind == WeightKind::Dense) {
        write_float(dst.dense, 0, float_view(*p.weight));
        up_.finish(dst.dense);
      } else {
        const QuantTensors q = quant(*p.weight);
        write_rows(dst.quant.packed, *q.packed);
        write_rows(dst.quant.scales, *q.scales);
        write_rows(dst.quant.biases, *q.biases);
      }
      if (p.bias) {
        write_float(dst.bias, 0, float_view(*p.bias));
        up_.finish(dst.bias);
      }
      row0 += rows;
    }
    return l;
  }

  ExpertLinear stacked_experts(const io::TensorBinding& w) override {
    ExpertLinear e = expert_shape(w.expected.shape, w);
    if (w.quant) {
      e.kind = WeightKind::MlxQuant;
      e.quant = upload_quant(w);
    } else {
      e.kind = WeightKind::Dense;
      e.dense = dense(w);
    }
    return e;
  }

  ExpertLinear per_expert(std::span<const io::TensorBinding* const> experts) override {
    const io::TensorBinding& first = *experts.front();
    const auto n = static_cast<std::int64_t>(experts.size());
    Shape shape = first.expected.shape;
    shape.insert(shape.begin(), n);
    ExpertLinear e = expert_shape(shape, first);
    for (const io::TensorBinding* b : experts) {
      if (b->expected.shape != first.expected.shape || b->quant != first.quant) {
        fail(ErrorKind::Unsupported, b->stored_name,
             "experts of one projection must share shape and quantization to be stacked (as '" +
                 first.stored_name + "')");
      }
    }
    if (!first.quant) {
      e.kind = WeightKind::Dense;
      e.dense = up_.alloc(up_.compute_dtype(), shape);
      const std::int64_t per = shape_numel(first.expected.shape);
      for (std::int64_t i = 0; i < n; ++i) {
        write_float(e.dense, i * per, view(experts[i]->stored_name));
      }
      up_.finish(e.dense);
      return e;
    }
    // MLX-quantized experts: each part is stacked byte for byte.
    std::vector<QuantTensors> parts;
    for (const io::TensorBinding* b : experts) parts.push_back(quant(*b));
    const QuantTensors& q0 = parts.front();
    for (const QuantTensors& q : parts) {
      if (q.scales->dtype != q0.scales->dtype || q.biases->dtype != q0.biases->dtype) {
        fail(ErrorKind::Unsupported, q.scales->name,
             "experts of one projection must share the scales/biases dtype to be stacked");
      }
    }
    e.kind = WeightKind::MlxQuant;
    e.quant.bits = q0.params.bits;
    e.quant.group_size = q0.params.group_size;
    e.quant.packed = stack(parts, &QuantTensors::packed, n);
    e.quant.scales = stack(parts, &QuantTensors::scales, n);
    e.quant.biases = stack(parts, &QuantTensors::biases, n);
    return e;
  }

  EmbeddingWeights embedding(const io::TensorBinding& w) override {
    EmbeddingWeights e;
    if (w.quant) {
      const ops::QuantizedWeight q = upload_quant(w);
      e.quant = ops::QuantizedEmbedding{q.packed, q.scales, q.biases, q.bits, q.group_size};
    } else {
      e.dense = dense(w);
    }
    return e;
  }

  Linear tied_head(const io::TensorBinding& w, const EmbeddingWeights& e) override {
    Linear l;
    l.out = w.expected.shape.front();
    l.in = w.expected.shape.back();
    if (e.quant) {
      l.kind = WeightKind::MlxQuant;
      l.quant = ops::QuantizedWeight{e.quant->packed, e.quant->scales, e.quant->biases,
                                     e.quant->bits, e.quant->group_size};
    } else {
      l.kind = WeightKind::Dense;
      l.dense = e.dense;
    }
    return l;
  }

 private:
  [[noreturn]] void fail(ErrorKind kind, const std::string& tensor, const std::string& what) const {
    const io::SafetensorsFile* file = model_.contains(tensor) ? &model_.file_of(tensor) : nullptr;
    throw Error(kind, (file ? file->name() : model_.path().string()) + ": tensor '" + tensor +
                          "': " + what);
  }

  const io::TensorView& view(const std::string& name) const {
    const io::TensorView* t = model_.find(name);
    if (!t) fail(ErrorKind::Format, name, "missing");
    return *t;
  }

  QuantTensors quant(const io::TensorBinding& b) const {
    const std::string module = b.stored_name.substr(0, b.stored_name.size() - 7);  // ".weight"
    QuantTensors q{&view(b.stored_name), &view(module + ".scales"), &view(module + ".biases"),
                   *b.quant};
    // The kernels' limits (ops/quantized_matmul.h, ops/embedding.h).
    if (!io::quant_bits_supported(q.params.bits) ||
        !io::quant_group_size_supported(q.params.group_size)) {
      fail(ErrorKind::Unsupported, b.stored_name,
           std::to_string(q.params.bits) + "-bit group-" + std::to_string(q.params.group_size) +
               " MLX quantization has no kernel (bits 2, 3, 4, 5, 6, 8; group 32, 64, 128)");
    }
    if (q.scales->dtype != q.biases->dtype) {
      fail(ErrorKind::Unsupported, q.biases->name,
           "biases are " + std::string(io::tensor_dtype_name(q.biases->dtype)) +
               " but scales are " + std::string(io::tensor_dtype_name(q.scales->dtype)) +
               "; the kernels need one dtype");
    }
    if (!io::to_dtype(q.scales->dtype) || !dtype_is_float(*io::to_dtype(q.scales->dtype)) ||
        q.scales->dtype == io::TensorDType::F64) {
      fail(ErrorKind::Unsupported, q.scales->name,
           "scales must be F32, F16 or BF16, found " +
               std::string(io::tensor_dtype_name(q.scales->dtype)));
    }
    return q;
  }

  // A float tensor the compute dtype can be converted from.
  const io::TensorView& float_view(const io::TensorBinding& b) const {
    const io::TensorView& t = view(b.stored_name);
    if (t.dtype != io::TensorDType::F64 && t.dtype != io::TensorDType::F32 &&
        t.dtype != io::TensorDType::F16 && t.dtype != io::TensorDType::BF16) {
      fail(ErrorKind::Unsupported, t.name,
           "cannot convert " + std::string(io::tensor_dtype_name(t.dtype)) + " to " +
               std::string(dtype_name(up_.compute_dtype())));
    }
    return t;
  }

  Buffer dense(const io::TensorBinding& b) {
    return up_.upload_float(float_view(b), b.expected.shape);
  }

  // Stored bytes of `t` into `dst`, rows of a fused buffer of t's dtype; counted for progress.
  void write_rows(Buffer dst, const io::TensorView& t) {
    if (t.bytes.size() != dst.size_bytes() || io::to_dtype(t.dtype) != dst.dtype()) {
      fail(ErrorKind::Format, t.name,
           "does not match the " + shape_to_string(dst.shape()) + " " +
               std::string(dtype_name(dst.dtype())) + " rows of the projection it is fused into");
    }
    dst.write(t.bytes.data(), t.bytes.size());
    up_.finish(dst);
  }

  Buffer raw(const io::TensorView& t) {
    return up_.upload_bytes(t.bytes, *io::to_dtype(t.dtype), t.shape);
  }

  ops::QuantizedWeight upload_quant(const io::TensorBinding& b) {
    const QuantTensors q = quant(b);
    return ops::QuantizedWeight{raw(*q.packed), raw(*q.scales), raw(*q.biases), q.params.bits,
                                q.params.group_size};
  }

  // One [n, ...] buffer holding part `which` of every expert, in order.
  Buffer stack(const std::vector<QuantTensors>& parts, const io::TensorView* QuantTensors::*which,
               std::int64_t n) {
    const io::TensorView& t0 = *(parts.front().*which);
    Shape shape = t0.shape;
    shape.insert(shape.begin(), n);
    Buffer out = up_.alloc(*io::to_dtype(t0.dtype), shape);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const io::TensorView& t = *(parts[i].*which);
      out.write(t.bytes.data(), t.bytes.size(), i * t0.bytes.size());
    }
    up_.finish(out);
    return out;
  }

  ExpertLinear expert_shape(const Shape& shape, const io::TensorBinding& b) const {
    if (shape.size() != 3) {
      fail(ErrorKind::Format, b.stored_name,
           "expert weights must be [experts, out, in], found " + shape_to_string(shape));
    }
    ExpertLinear e;
    e.n_experts = shape[0];
    e.out = shape[1];
    e.in = shape[2];
    return e;
  }

  const io::SafetensorsModel& model_;
  Uploader& up_;
};

}  // namespace

std::unique_ptr<WeightSource> make_safetensors_source(const io::SafetensorsModel& model,
                                                      Uploader& uploader) {
  return std::make_unique<SafetensorsSource>(model, uploader);
}

}  // namespace mlxn::engine::detail
