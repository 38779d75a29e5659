// fused_decode_scales and the fused step's weight checks (mlxn/ops/fused_decode.h). The scales
// and biases are random 16-bit patterns (NaNs and infinities included), so anything but a
// bit-exact copy shows; the expected order is computed here from the header's index formula.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mlxn/ops/fused_decode.h"
#include "test_backends.h"

namespace mlxn {
namespace {

// A weight's scales and biases as bits (bf16 [n, k / 64], row-major).
struct Scales {
  std::int64_t n, k;
  std::vector<std::uint16_t> scales, biases;
};

Scales random_scales(std::mt19937& rng, std::int64_t n, std::int64_t k) {
  std::uniform_int_distribution<int> bits(0, 0xFFFF);
  Scales s{n, k, std::vector<std::uint16_t>(n * k / 64), std::vector<std::uint16_t>(n * k / 64)};
  for (auto& v : s.scales) v = static_cast<std::uint16_t>(bits(rng));
  for (auto& v : s.biases) v = static_cast<std::uint16_t>(bits(rng));
  return s;
}

// A 4-bit, group-64 weight with these scales (Rows layout; the codes are zero: never read).
ops::QuantizedWeight upload_weight(Device& device, const Scales& s,
                                   DType scale_dtype = DType::BF16) {
  ops::QuantizedWeight w;
  w.packed = device.alloc(DType::U32, {s.n, s.k / 8});
  w.scales = device.alloc(scale_dtype, {s.n, s.k / 64});
  w.biases = device.alloc(scale_dtype, {s.n, s.k / 64});
  w.scales.write(s.scales);
  w.biases.write(s.biases);
  w.bits = 4;
  w.group_size = 64;
  return w;
}

// The header's order: element ((((t * units + u) * 16 + s) * 16 + r) * 4 + c), with row 16 t + r,
// groups g0 = 32 u + 2 s and g0 + 1; c = 0, 1 the scales, 2, 3 the biases.
std::vector<std::uint16_t> expected(const Scales& w) {
  const std::int64_t units = w.k / 2048, groups = w.k / 64;
  std::vector<std::uint16_t> out(ops::fused_decode_scales_elems(w.n, w.k));
  for (std::int64_t t = 0; t < w.n / 16; ++t) {
    for (std::int64_t u = 0; u < units; ++u) {
      for (std::int64_t s = 0; s < 16; ++s) {
        for (std::int64_t r = 0; r < 16; ++r) {
          const std::int64_t row = 16 * t + r, g0 = u * 32 + 2 * s;
          const std::int64_t at = (((t * units + u) * 16 + s) * 16 + r) * 4;
          out[at + 0] = w.scales[row * groups + g0];
          out[at + 1] = w.scales[row * groups + g0 + 1];
          out[at + 2] = w.biases[row * groups + g0];
          out[at + 3] = w.biases[row * groups + g0 + 1];
        }
      }
    }
  }
  return out;
}

// The op's output for w, read back as bits. `offset_elems` places out that many bf16 into a
// larger buffer (an unaligned view where odd).
std::vector<std::uint16_t> run(Device& device, const ops::QuantizedWeight& w, std::int64_t n,
                               std::int64_t k, std::int64_t offset_elems = 0) {
  const std::int64_t elems = ops::fused_decode_scales_elems(n, k);
  Buffer whole = test::poisoned(device, DType::BF16, {elems + offset_elems});
  Buffer out = whole.view(static_cast<std::size_t>(offset_elems) * 2,
                          static_cast<std::size_t>(elems) * 2, DType::BF16, {elems});
  CommandEncoder enc = device.command_encoder();
  ops::fused_decode_scales(enc, w, out);
  enc.commit_and_wait();
  return out.to_vector<std::uint16_t>();
}

// The index of the first element where a and b differ, or -1.
std::int64_t first_mismatch(const std::vector<std::uint16_t>& a,
                            const std::vector<std::uint16_t>& b) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return static_cast<std::int64_t>(i);
  }
  return -1;
}

TEST(FusedDecodeScales, ElemsIsNTimesKOver32) {
  EXPECT_EQ(ops::fused_decode_scales_elems(16, 2048), 1024);
  EXPECT_EQ(ops::fused_decode_scales_elems(4096, 14336), 4096ll * 14336 / 32);
}

TEST(FusedDecodeScales, CopiesIntoUnitOrderBitForBit) {
  Device cpu = Device::open(Backend::Cpu);
  auto rng = test::seeded_rng();
  for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{16, 2048}, {32, 4096}, {48, 6144}}) {
    SCOPED_TRACE("n=" + std::to_string(n) + " k=" + std::to_string(k));
    const Scales s = random_scales(rng, n, k);
    const ops::QuantizedWeight w = upload_weight(cpu, s);
    EXPECT_EQ(first_mismatch(run(cpu, w, n, k), expected(s)), -1);
  }
}

TEST(FusedDecodeScales, AcceptsDecodeTilesAndRowsAlike) {
  Device cpu = Device::open(Backend::Cpu);
  auto rng = test::seeded_rng();
  const Scales s = random_scales(rng, 32, 4096);
  const ops::QuantizedWeight rows = upload_weight(cpu, s);
  EXPECT_EQ(ops::fused_decode_weight_problem(rows), "layout is Rows (needs DecodeTiles)");
  CommandEncoder enc = cpu.command_encoder();
  const ops::QuantizedWeight tiled =
      ops::tile_for_decode(enc, rows, cpu.alloc(DType::U32, rows.packed.shape()));
  enc.commit_and_wait();
  EXPECT_EQ(ops::fused_decode_weight_problem(tiled), "");
  EXPECT_EQ(first_mismatch(run(cpu, tiled, 32, 4096), expected(s)), -1);
  EXPECT_EQ(first_mismatch(run(cpu, rows, 32, 4096), expected(s)), -1);
}

TEST(FusedDecodeScales, UnfitWeightsAreNamedAndRefused) {
  Device cpu = Device::open(Backend::Cpu);
  auto rng = test::seeded_rng();
  const auto tiled = [&](std::int64_t n, std::int64_t k, DType dt = DType::BF16) {
    ops::QuantizedWeight w = upload_weight(cpu, random_scales(rng, n, k), dt);
    w.layout = ops::QuantLayout::DecodeTiles;  // only the label: the codes are never read
    return w;
  };
  struct Case {
    const char* what;
    ops::QuantizedWeight w;
    std::string needle;  // the problem must name this
  };
  std::vector<Case> cases;
  cases.push_back({"bits 8", tiled(32, 4096), "bits 8"});
  cases.back().w.bits = 8;
  cases.push_back({"group 32", tiled(32, 4096), "group size 32"});
  cases.back().w.group_size = 32;
  cases.push_back({"f16 scales", tiled(32, 4096, DType::F16), "scales are f16"});
  cases.push_back({"k 3584", tiled(32, 3584), "k 3584 is not a multiple of 2048"});
  cases.push_back({"n 24", tiled(24, 4096), "n 24"});
  cases.push_back({"k 18432", tiled(32, 18432), "k 18432"});
  cases.push_back({"no scales", tiled(32, 4096), "scales"});
  cases.back().w.scales = Buffer();
  cases.push_back({"stacked", tiled(32, 4096), "packed"});
  cases.back().w.packed = cpu.alloc(DType::U32, {2, 32, 512});

  Buffer out = cpu.alloc(DType::BF16, {ops::fused_decode_scales_elems(32, 4096)});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string problem = ops::fused_decode_weight_problem(c.w);
    EXPECT_NE(problem.find(c.needle), std::string::npos) << problem;
    CommandEncoder enc = cpu.command_encoder();
    MLXN_EXPECT_ERROR(ops::fused_decode_scales(enc, c.w, out), ErrorKind::QuantConfig);
  }
  EXPECT_EQ(ops::fused_decode_weight_problem(tiled(32, 16384)), "");
}

TEST(FusedDecodeScales, RejectsAWrongOut) {
  Device cpu = Device::open(Backend::Cpu);
  auto rng = test::seeded_rng();
  const ops::QuantizedWeight w = upload_weight(cpu, random_scales(rng, 16, 2048));
  const std::int64_t elems = ops::fused_decode_scales_elems(16, 2048);
  CommandEncoder enc = cpu.command_encoder();
  MLXN_EXPECT_ERROR(ops::fused_decode_scales(enc, w, cpu.alloc(DType::BF16, {elems - 4})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::fused_decode_scales(enc, w, cpu.alloc(DType::F32, {elems})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::fused_decode_scales(enc, w, Buffer()), ErrorKind::InvalidArgument);
  // out over the scales' own bytes.
  ops::QuantizedWeight shared = w;
  Buffer storage = cpu.alloc(DType::BF16, {elems});
  shared.scales = storage.view(0, w.scales.size_bytes(), DType::BF16, w.scales.shape());
  MLXN_EXPECT_ERROR(ops::fused_decode_scales(enc, shared, storage), ErrorKind::InvalidArgument);
}

class FusedDecodeScalesCuda : public test::CudaVsCpuTest {};

TEST_F(FusedDecodeScalesCuda, MatchesCpuBitForBit) {
  auto rng = test::seeded_rng();
  for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{16, 2048}, {32, 4096}, {48, 6144}}) {
    SCOPED_TRACE("n=" + std::to_string(n) + " k=" + std::to_string(k));
    const Scales s = random_scales(rng, n, k);
    const std::vector<std::uint16_t> want = run(cpu_, upload_weight(cpu_, s), n, k);
    EXPECT_EQ(first_mismatch(want, expected(s)), -1);
    const ops::QuantizedWeight w = upload_weight(*cuda_, s);
    EXPECT_EQ(first_mismatch(run(*cuda_, w, n, k), want), -1);
    // An out view one bf16 into its buffer takes the kernel's unaligned stores.
    EXPECT_EQ(first_mismatch(run(*cuda_, w, n, k, 1), want), -1);
  }
}

}  // namespace
}  // namespace mlxn
