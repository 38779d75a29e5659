// GGML type table: names and block geometry for every id GGUF files may carry.
#include "mlxn/io/ggml_types.h"

#include <array>
#include <limits>

#include "mlxn/core/error.h"

namespace mlxn::io {
namespace {

// Indexed by id. An empty name marks a gap (none today; kept for future ids).
constexpr std::array<GgmlTypeTraits, kGgmlTypeCount> kTraits = {{
    {"f32", 1, 4, false, false},         // 0
    {"f16", 1, 2, false, false},         // 1
    {"q4_0", 32, 18, true, false},       // 2
    {"q4_1", 32, 20, true, false},       // 3
    {"q4_2", 32, 18, true, true},        // 4 (removed; geometry of the old format)
    {"q4_3", 32, 20, true, true},        // 5 (removed)
    {"q5_0", 32, 22, true, false},       // 6
    {"q5_1", 32, 24, true, false},       // 7
    {"q8_0", 32, 34, true, false},       // 8
    {"q8_1", 32, 36, true, false},       // 9
    {"q2_K", 256, 84, true, false},      // 10
    {"q3_K", 256, 110, true, false},     // 11
    {"q4_K", 256, 144, true, false},     // 12
    {"q5_K", 256, 176, true, false},     // 13
    {"q6_K", 256, 210, true, false},     // 14
    {"q8_K", 256, 292, true, false},     // 15
    {"iq2_xxs", 256, 66, true, false},   // 16
    {"iq2_xs", 256, 74, true, false},    // 17
    {"iq3_xxs", 256, 98, true, false},   // 18
    {"iq1_s", 256, 50, true, false},     // 19
    {"iq4_nl", 32, 18, true, false},     // 20
    {"iq3_s", 256, 110, true, false},    // 21
    {"iq2_s", 256, 82, true, false},     // 22
    {"iq4_xs", 256, 136, true, false},   // 23
    {"i8", 1, 1, false, false},          // 24
    {"i16", 1, 2, false, false},         // 25
    {"i32", 1, 4, false, false},         // 26
    {"i64", 1, 8, false, false},         // 27
    {"f64", 1, 8, false, false},         // 28
    {"iq1_m", 256, 56, true, false},     // 29
    {"bf16", 1, 2, false, false},        // 30
    {"q4_0_4_4", 32, 18, true, true},    // 31 (removed)
    {"q4_0_4_8", 32, 18, true, true},    // 32 (removed)
    {"q4_0_8_8", 32, 18, true, true},    // 33 (removed)
    {"tq1_0", 256, 54, true, false},     // 34
    {"tq2_0", 256, 66, true, false},     // 35
    {"iq4_nl_4_4", 32, 18, true, true},  // 36 (removed)
    {"iq4_nl_4_8", 32, 18, true, true},  // 37 (removed)
    {"iq4_nl_8_8", 32, 18, true, true},  // 38 (removed)
    {"mxfp4", 32, 17, true, false},      // 39
}};

}  // namespace

std::optional<GgmlType> ggml_type_from_id(std::uint32_t id) {
  if (id >= kGgmlTypeCount || kTraits[id].name.empty()) return std::nullopt;
  return static_cast<GgmlType>(id);
}

const GgmlTypeTraits& ggml_type_traits(GgmlType type) {
  auto id = static_cast<std::uint32_t>(type);
  if (!ggml_type_from_id(id)) {
    throw Error(ErrorKind::Format, "unknown GGML type id " + std::to_string(id));
  }
  return kTraits[id];
}

std::string ggml_type_name(GgmlType type) {
  auto id = static_cast<std::uint32_t>(type);
  if (!ggml_type_from_id(id)) return "type#" + std::to_string(id);
  return std::string(kTraits[id].name);
}

std::optional<std::uint64_t> ggml_try_row_size(GgmlType type, std::uint64_t n_elements) {
  const GgmlTypeTraits& t = ggml_type_traits(type);
  if (n_elements % t.block_size != 0) return std::nullopt;
  std::uint64_t blocks = n_elements / t.block_size;
  if (blocks > std::numeric_limits<std::uint64_t>::max() / t.type_size) return std::nullopt;
  return blocks * t.type_size;
}

std::uint64_t ggml_row_size(GgmlType type, std::uint64_t n_elements) {
  std::optional<std::uint64_t> size = ggml_try_row_size(type, n_elements);
  if (!size) {
    const GgmlTypeTraits& t = ggml_type_traits(type);
    throw Error(ErrorKind::InvalidArgument,
                std::to_string(n_elements) + " elements of " + std::string(t.name) +
                    (n_elements % t.block_size != 0
                         ? " are not a multiple of the block size " + std::to_string(t.block_size)
                         : " overflow a 64-bit byte size"));
  }
  return *size;
}

}  // namespace mlxn::io
