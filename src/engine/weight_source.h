// Private to the weight loader: one interface over the two storage formats (safetensors and
// GGUF), so the model layout is walked once in model_weights.cpp and each format only says how a
// tensor becomes a device buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "mlxn/engine/model_weights.h"
#include "mlxn/io/gguf_file.h"
#include "mlxn/io/model_dir_tensors.h"
#include "mlxn/io/safetensors_model.h"
#include "weight_upload.h"

namespace mlxn::engine::detail {

/// What a tensor is used as; decides how a format stores it on the device.
enum class TensorRole { Vector, Linear, Embedding };

/// A projection's weight and its optional bias.
struct LinearBinding {
  const io::TensorBinding* weight = nullptr;
  const io::TensorBinding* bias = nullptr;
};

/// How WeightSource::linear stores a projection on the device: what decides whether
/// projections can share one allocation (fused_projections.h).
struct LinearFormat {
  WeightKind kind = WeightKind::Dense;
  std::int64_t in = 0;
  std::int64_t out = 0;
  DType dtype = DType::F32;  // Dense: the compute dtype; MlxQuant: scales/biases; Ggml: u8
  int bits = 0;              // MlxQuant (also GGUF Q4_0 / Q8_0 repacked on CUDA)
  int group_size = 0;        // MlxQuant
  io::GgmlType ggml_type = io::GgmlType::F32;  // Ggml
  std::int64_t row_bytes = 0;                  // Ggml: bytes of one row of blocks
  bool has_bias = false;
};

/// Binds tensors of one file format. Bindings come from ModelDir::check_weights, so names,
/// shapes and quantization parameters are already validated; what is left to fail is what the
/// kernels cannot run (errors name the file and the tensor).
class WeightSource {
 public:
  virtual ~WeightSource() = default;

  /// Device bytes the tensor will take in `role` (for the progress total; 0 extra for sharing).
  virtual std::int64_t device_bytes(const io::TensorBinding& b, TensorRole role) const = 0;
  /// Device bytes of the tied output projection beyond the embedding table itself.
  virtual std::int64_t tied_head_bytes(const io::TensorBinding& embedding) const = 0;

  /// A 1-D tensor (norm weight, bias) in the compute dtype.
  virtual Buffer vector(const io::TensorBinding& b) = 0;
  /// A projection [out, in] with an optional bias [out].
  virtual Linear linear(const io::TensorBinding& w, const io::TensorBinding* bias) = 0;
  /// How linear() would store `b`, without uploading anything (throws what linear() would for
  /// a tensor no kernel runs).
  virtual LinearFormat linear_format(const LinearBinding& b) const = 0;
  /// Projections stacked by output rows into one Linear: each buffer (dense rows, packed codes,
  /// scales, biases, GGML blocks, bias) is allocated once for all parts and every part is
  /// uploaded straight to its row offset -- no device copy, no second full-size allocation.
  /// The parts' formats must pass can_fuse (fused_projections.h).
  virtual Linear fused_linear(std::span<const LinearBinding> parts) = 0;
  /// Experts stored stacked [n_experts, out, in] (mlx-lm switch_mlp, GGUF *_exps).
  virtual ExpertLinear stacked_experts(const io::TensorBinding& w) = 0;
  /// Experts stored one tensor each [out, in] (Hugging Face mlp.experts.E.*), stacked here.
  virtual ExpertLinear per_expert(std::span<const io::TensorBinding* const> experts) = 0;
  /// The token embedding table [vocab, hidden].
  virtual EmbeddingWeights embedding(const io::TensorBinding& w) = 0;
  /// The output projection when tied to the embedding table `e` (bound from `w`).
  virtual Linear tied_head(const io::TensorBinding& w, const EmbeddingWeights& e) = 0;
};

std::unique_ptr<WeightSource> make_safetensors_source(const io::SafetensorsModel& model,
                                                      Uploader& uploader);
/// GGUF tensors stored as the uploader's backend wants them (on CUDA, Q4_0 / Q8_0 projections
/// are repacked to MLX affine form: ggml_repack.h).
std::unique_ptr<WeightSource> make_gguf_source(const io::GgufFile& file, Uploader& uploader);
/// GGUF tensors stored as on `layout`, whatever the uploader's device: lets tests build the CUDA
/// layout on the CPU backend, whose kernels are the reference.
std::unique_ptr<WeightSource> make_gguf_source(const io::GgufFile& file, Uploader& uploader,
                                               Backend layout);

}  // namespace mlxn::engine::detail
