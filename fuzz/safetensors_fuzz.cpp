// libFuzzer harness: parses arbitrary bytes as a safetensors file; anything but mlxn::Error is a
// bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "mlxn/core/error.h"
#include "mlxn/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const mlxn::io::SafetensorsFile file = mlxn::io::SafetensorsFile::from_bytes("fuzz", bytes);
    // Touch every view so that ASan sees any out-of-bounds span the validation let through.
    std::uint64_t sum = 0;
    for (const mlxn::io::TensorView& t : file.tensors()) {
      for (std::byte b : t.bytes) sum += static_cast<std::uint8_t>(b);
      if (t.numel() <= 4096) sum += mlxn::io::tensor_to_f32(t).size();
    }
    for (const auto& [key, value] : file.metadata()) sum += key.size() + value.size();
    volatile std::uint64_t sink = sum;
    (void)sink;
  } catch (const mlxn::Error&) {
    // Rejecting malformed input with an Error is the expected outcome.
  }
  return 0;
}
