// Test helpers that write tiny model directories: config.json plus safetensors weights shaped
// as a family expects, dense or MLX-quantized, with hooks to drop or reshape tensors.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "io_test_util.h"
#include "mlxn/io/model_config.h"
#include "mlxn/io/model_dir_tensors.h"
#include "mlxn/io/safetensors_writer.h"

namespace mlxn::io::test {

/// A small config.json of `model_type` with 2 layers, hidden 64, 4 heads / 2 kv heads.
inline std::string tiny_config(const std::string& model_type, const std::string& extra = "") {
  return R"({"model_type": ")" + model_type +
         R"(", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
    "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 96, "rms_norm_eps": 1e-5)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

/// How to write the weights.
struct WeightOptions {
  TensorNaming naming;
  std::set<std::string> drop;                 // tensor names to leave out
  std::map<std::string, Shape> reshape;       // tensor name -> shape written instead
  std::map<std::string, std::string> rename;  // tensor name -> name written instead
  std::vector<std::string> extra;             // additional 1-D tensors (e.g. a vision tower)
};

/// Writes `dir/model.safetensors` with every tensor `config` expects. Quantizable tensors are
/// written MLX-quantized (zero codes, bf16 scales/biases) where config.quantization gives
/// parameters for their module.
inline void write_weights(const std::filesystem::path& file, const ModelConfig& config,
                          const WeightOptions& opt = {}) {
  SafetensorsWriter w;
  auto put = [&](std::string name, TensorDType dtype, Shape shape) {
    if (opt.drop.count(name)) return;
    if (auto it = opt.reshape.find(name); it != opt.reshape.end()) shape = it->second;
    if (auto it = opt.rename.find(name); it != opt.rename.end()) name = it->second;
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    const std::size_t bytes = static_cast<std::size_t>(n) * tensor_dtype_size(dtype);
    std::vector<std::byte> data(bytes, std::byte{0x3c});
    w.add(name, dtype, shape, std::span<const std::byte>(data));
  };
  for (const ExpectedTensor& e : expected_tensors(config, opt.naming)) {
    const std::string module = e.name.substr(0, e.name.size() - 7);
    std::optional<QuantParams> q;
    if (e.quantizable && config.quantization) q = config.quantization->for_module(module);
    if (!q) {
      put(e.name, TensorDType::BF16, e.shape);
      continue;
    }
    Shape packed = e.shape, groups = e.shape;
    packed.back() = e.shape.back() * q->bits / 32;
    groups.back() = e.shape.back() / q->group_size;
    put(e.name, TensorDType::U32, packed);
    put(module + ".scales", TensorDType::BF16, groups);
    put(module + ".biases", TensorDType::BF16, groups);
  }
  for (const auto& name : opt.extra) put(name, TensorDType::F32, {4});
  w.write(file);
}

}  // namespace mlxn::io::test
