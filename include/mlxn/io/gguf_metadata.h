// GgufMetadata: typed access to a GGUF file's model metadata (architecture, hyper-parameters,
// rope settings, tokenizer arrays, chat template).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mlxn/core/error.h"
#include "mlxn/io/gguf_file.h"

namespace mlxn::io {

/// Typed, converting view of a GgufFile's metadata. Holds a reference: the file must outlive
/// it. Scalar getters convert between integer types when the value fits and between f32/f64;
/// other mismatches and absent required keys throw Format naming the file and the key. Arrays
/// are returned by reference, never copied.
class GgufMetadata {
 public:
  /// Views `file`'s metadata.
  explicit GgufMetadata(const GgufFile& file) : file_(&file) {}

  /// The underlying file.
  const GgufFile& file() const { return *file_; }
  /// True when `key` is present.
  bool has(std::string_view key) const { return file_->has(key); }
  /// The raw value of `key`, or nullptr.
  const GgufValue* find(std::string_view key) const { return file_->find(key); }

  /// `key` converted to T (integer, float, double, bool or std::string); throws Format when
  /// absent, of an incompatible type, or out of T's range.
  template <class T>
  T get(std::string_view key) const {
    return convert<T>(file_->at(key), key);
  }
  /// Like get, but `fallback` when the key is absent (a present key of a wrong type throws).
  template <class T>
  T get_or(std::string_view key, T fallback) const {
    const GgufValue* v = find(key);
    return v ? convert<T>(*v, key) : fallback;
  }
  /// Like get, but nullopt when the key is absent.
  template <class T>
  std::optional<T> get_optional(std::string_view key) const {
    const GgufValue* v = find(key);
    return v ? std::optional<T>(convert<T>(*v, key)) : std::nullopt;
  }
  /// The array elements of `key`, which must be an array of exactly T; no copy.
  template <class T>
  const std::vector<T>& array(std::string_view key) const {
    return file_->at(key).array<T>(file_->key_context(key));
  }

  /// `general.architecture` ("llama", "qwen2", ...); throws Format when absent.
  std::string architecture() const { return get<std::string>("general.architecture"); }
  /// "<architecture>.<suffix>", the key of an architecture hyper-parameter.
  std::string arch_key(std::string_view suffix) const;
  /// get<T>(arch_key(suffix)).
  template <class T>
  T arch_get(std::string_view suffix) const {
    return get<T>(arch_key(suffix));
  }
  /// get_or<T>(arch_key(suffix), fallback).
  template <class T>
  T arch_get_or(std::string_view suffix, T fallback) const {
    return get_or<T>(arch_key(suffix), fallback);
  }
  /// has(arch_key(suffix)).
  bool arch_has(std::string_view suffix) const { return has(arch_key(suffix)); }
  /// A per-layer hyper-parameter stored either as one scalar or as an integer array of
  /// block_count entries (e.g. feed_forward_length, attention.head_count_kv); block_count values.
  std::vector<std::uint32_t> per_layer(std::string_view suffix) const;

  // Hyper-parameters (<arch>.*). Required ones throw Format when absent.
  std::uint32_t context_length() const { return arch_get<std::uint32_t>("context_length"); }
  std::uint32_t embedding_length() const { return arch_get<std::uint32_t>("embedding_length"); }
  std::uint32_t block_count() const { return arch_get<std::uint32_t>("block_count"); }
  std::uint32_t feed_forward_length() const {
    return arch_get<std::uint32_t>("feed_forward_length");
  }
  std::uint32_t head_count() const { return arch_get<std::uint32_t>("attention.head_count"); }
  /// attention.head_count_kv, defaulting to head_count (no grouped-query attention).
  std::uint32_t head_count_kv() const {
    return arch_get_or<std::uint32_t>("attention.head_count_kv", head_count());
  }
  std::optional<std::uint32_t> key_length() const {
    return get_optional<std::uint32_t>(arch_key("attention.key_length"));
  }
  std::optional<std::uint32_t> value_length() const {
    return get_optional<std::uint32_t>(arch_key("attention.value_length"));
  }
  std::optional<float> rms_norm_eps() const {
    return get_optional<float>(arch_key("attention.layer_norm_rms_epsilon"));
  }
  std::optional<float> layer_norm_eps() const {
    return get_optional<float>(arch_key("attention.layer_norm_epsilon"));
  }
  /// rope.freq_base, default 10000 (ggml's default).
  float rope_freq_base() const { return arch_get_or<float>("rope.freq_base", 10000.0f); }
  std::optional<std::uint32_t> rope_dimension_count() const {
    return get_optional<std::uint32_t>(arch_key("rope.dimension_count"));
  }
  /// rope.scaling.type ("none", "linear", "yarn", "longrope"), absent -> nullopt.
  std::optional<std::string> rope_scaling_type() const {
    return get_optional<std::string>(arch_key("rope.scaling.type"));
  }
  std::optional<float> rope_scaling_factor() const {
    return get_optional<float>(arch_key("rope.scaling.factor"));
  }
  std::optional<std::uint32_t> rope_scaling_original_context_length() const {
    return get_optional<std::uint32_t>(arch_key("rope.scaling.original_context_length"));
  }
  std::uint32_t expert_count() const { return arch_get_or<std::uint32_t>("expert_count", 0); }
  std::uint32_t expert_used_count() const {
    return arch_get_or<std::uint32_t>("expert_used_count", 0);
  }
  std::optional<std::uint32_t> sliding_window() const {
    return get_optional<std::uint32_t>(arch_key("attention.sliding_window"));
  }

  // Tokenizer (tokenizer.ggml.*, tokenizer.chat_template).
  /// tokenizer.ggml.model ("llama", "gpt2", ...).
  std::string tokenizer_model() const { return get<std::string>("tokenizer.ggml.model"); }
  /// tokenizer.ggml.tokens; throws Format when absent.
  const std::vector<std::string>& tokens() const {
    return array<std::string>("tokenizer.ggml.tokens");
  }
  /// tokenizer.ggml.scores, or nullptr when absent.
  const std::vector<float>* scores() const {
    return optional_array<float>("tokenizer.ggml.scores");
  }
  /// tokenizer.ggml.token_type, or nullptr when absent.
  const std::vector<std::int32_t>* token_types() const {
    return optional_array<std::int32_t>("tokenizer.ggml.token_type");
  }
  /// tokenizer.ggml.merges, or nullptr when absent.
  const std::vector<std::string>* merges() const {
    return optional_array<std::string>("tokenizer.ggml.merges");
  }
  std::optional<std::uint32_t> bos_token_id() const {
    return get_optional<std::uint32_t>("tokenizer.ggml.bos_token_id");
  }
  std::optional<std::uint32_t> eos_token_id() const {
    return get_optional<std::uint32_t>("tokenizer.ggml.eos_token_id");
  }
  std::optional<std::string> chat_template() const {
    return get_optional<std::string>("tokenizer.chat_template");
  }

 private:
  template <class T>
  const std::vector<T>* optional_array(std::string_view key) const {
    return has(key) ? &array<T>(key) : nullptr;
  }

  template <class T>
  T convert(const GgufValue& v, std::string_view key) const {
    std::string ctx = file_->key_context(key);
    if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string>) {
      return v.as<T>(ctx);
    } else if constexpr (std::is_floating_point_v<T>) {
      return static_cast<T>(v.to_double(ctx));
    } else {
      static_assert(std::is_integral_v<T>, "get<T>: T must be integer, float, bool or string");
      if constexpr (std::is_same_v<T, std::uint64_t>) {
        if (v.is<std::uint64_t>()) return v.as<std::uint64_t>();
      }
      std::int64_t i = v.to_int(ctx);
      if (i < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          (i > 0 && static_cast<std::uint64_t>(i) > std::numeric_limits<T>::max())) {
        throw Error(ErrorKind::Format, ctx + ": value " + std::to_string(i) +
                                           " is out of range for the expected type");
      }
      return static_cast<T>(i);
    }
  }

  const GgufFile* file_;
};

}  // namespace mlxn::io
