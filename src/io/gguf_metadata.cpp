// GgufMetadata: architecture-prefixed keys and per-layer hyper-parameters.
#include "mlxn/io/gguf_metadata.h"

namespace mlxn::io {

std::string GgufMetadata::arch_key(std::string_view suffix) const {
  return architecture() + "." + std::string(suffix);
}

std::vector<std::uint32_t> GgufMetadata::per_layer(std::string_view suffix) const {
  std::string key = arch_key(suffix);
  std::uint32_t n_layers = block_count();
  // A scalar would be broadcast to every layer: refuse absurd counts before allocating.
  constexpr std::uint32_t kMaxLayers = 1u << 16;
  if (n_layers > kMaxLayers) {
    throw Error(ErrorKind::Format, file_->key_context(arch_key("block_count")) + ": " +
                                       std::to_string(n_layers) + " layers is implausible");
  }
  const GgufValue& v = file_->at(key);
  const GgufArray* a = std::get_if<GgufArray>(&v.data());
  if (!a) return std::vector<std::uint32_t>(n_layers, convert<std::uint32_t>(v, key));
  std::string ctx = file_->key_context(key);
  if (a->size() != n_layers) {
    throw Error(ErrorKind::Format, ctx + ": per-layer array has " + std::to_string(a->size()) +
                                       " entries for " + std::to_string(n_layers) + " layers");
  }
  std::vector<std::uint32_t> out;
  out.reserve(n_layers);
  std::visit(
      [&](const auto& elems) {
        using E = typename std::decay_t<decltype(elems)>::value_type;
        if constexpr (std::is_integral_v<E> && !std::is_same_v<E, bool>) {
          for (E e : elems) out.push_back(convert<std::uint32_t>(GgufValue(e), key));
        } else {
          gguf_throw_type_mismatch(ctx, "integer or integer array", gguf_describe_type(v));
        }
      },
      a->data());
  return out;
}

}  // namespace mlxn::io
