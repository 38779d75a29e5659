// libFuzzer harness: parses arbitrary bytes as GGUF and touches every value and tensor view.
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

#include "mlxn/core/error.h"
#include "mlxn/io/ggml_dequant.h"
#include "mlxn/io/gguf_file.h"
#include "mlxn/io/gguf_metadata.h"

namespace {

// Folds every element into a checksum so the reads cannot be optimized away.
std::uint64_t touch(const mlxn::io::GgufArray& a) {
  std::uint64_t sum = a.size();
  std::visit(
      [&](const auto& v) {
        for (const auto& e : v) {
          using E = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<E, mlxn::io::GgufArray>) {
            sum += touch(e);
          } else if constexpr (std::is_same_v<E, std::string>) {
            sum += e.size() + (e.empty() ? 0 : static_cast<unsigned char>(e.back()));
          } else {
            sum += static_cast<std::uint64_t>(e ? 1 : 0);
          }
        }
      },
      a.data());
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mlxn::io;
  try {
    GgufFile file = GgufFile::from_span(
        "fuzz.gguf", std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
    volatile std::uint64_t sink = 0;
    for (const GgufKv& kv : file.metadata()) {
      sink = sink + kv.key.size() + kv.value.to_string().size();
      if (const auto* a = std::get_if<GgufArray>(&kv.value.data())) sink = sink + touch(*a);
    }
    GgufMetadata meta(file);
    try {
      sink = sink + meta.architecture().size() + meta.block_count();
      sink = sink + meta.per_layer("attention.head_count_kv").size();
    } catch (const mlxn::Error&) {
    }
    float out[256];
    for (const GgufTensorInfo& t : file.tensors()) {
      std::span<const std::byte> bytes = file.tensor_data(t);
      std::uint64_t acc = 0;
      for (std::byte b : bytes) acc += static_cast<std::uint8_t>(b);
      sink = sink + acc + t.shape().size();
      // Dequantize the first block: exercises the block decoders on hostile bytes.
      const GgmlTypeTraits& traits = ggml_type_traits(t.type);
      if (ggml_can_dequantize(t.type) && t.n_elements >= traits.block_size &&
          traits.block_size <= 256) {
        ggml_dequantize(t.type, bytes.first(traits.type_size),
                        std::span<float>(out, traits.block_size));
        sink = sink + static_cast<std::uint64_t>(out[0] == out[0]);
      }
    }
  } catch (const mlxn::Error&) {
    // Malformed input must surface as mlxn::Error; anything else (or a crash) is a bug.
  }
  return 0;
}
