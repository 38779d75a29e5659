// Fused gated projections: matmul_gated and quantized_matmul_gated, out = act(x @ gate^T) *
// (x @ up^T) with w = [gate rows; up rows]. On each backend the result must be bit-identical to
// the unfused sequence over row views of the same weight (matmul, matmul, silu_mul / gelu_mul),
// for the fused kernels (dense m == 1, quantized m <= 8) and the fallbacks, every dtype,
// activation, MLX bits and group size; a float64 reference guards against both forms being wrong
// together. Then which form runs (the recorded dispatches), CUDA vs CPU at a decode shape, and
// argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "mlxn/core/compute_graph.h"
#include "mlxn/ops/activations.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/quantized_matmul.h"
#include "ops/matmul_params.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using ops::GatedActivation;
using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
constexpr GatedActivation kActs[] = {GatedActivation::Silu, GatedActivation::GeluTanh,
                                     GatedActivation::GeluErf};
constexpr int kBits[] = {2, 3, 4, 5, 6, 8};
constexpr int kGroups[] = {32, 64, 128};
// 1 and 3: the fused mat-vec (one row, several rows of x); 9: the fallback (two products, then
// the activation op).
constexpr std::int64_t kRows[] = {1, 3, 9};

const char* act_name(GatedActivation act) {
  switch (act) {
    case GatedActivation::Silu:
      return "silu";
    case GatedActivation::GeluTanh:
      return "gelu_tanh";
    case GatedActivation::GeluErf:
      return "gelu_erf";
  }
  return "?";
}

std::int32_t gate_act_code(GatedActivation act) {
  switch (act) {
    case GatedActivation::Silu:
      return ops::kGateSilu;
    case GatedActivation::GeluTanh:
      return ops::kGateGeluTanh;
    case GatedActivation::GeluErf:
      return ops::kGateGeluErf;
  }
  return ops::kGateNone;
}

// The unfused activation: out = act(gate) * up with the public activation ops.
void unfused_activation(CommandEncoder& enc, GatedActivation act, const Buffer& gate,
                        const Buffer& up, const Buffer& out) {
  switch (act) {
    case GatedActivation::Silu:
      ops::silu_mul(enc, gate, up, out);
      return;
    case GatedActivation::GeluTanh:
      ops::gelu_mul(enc, gate, up, out, ops::GeluApprox::Tanh);
      return;
    case GatedActivation::GeluErf:
      ops::gelu_mul(enc, gate, up, out, ops::GeluApprox::Erf);
      return;
  }
}

double act_ref(GatedActivation act, double g) {
  switch (act) {
    case GatedActivation::Silu:
      return g / (1.0 + std::exp(-g));
    case GatedActivation::GeluTanh:
      return 0.5 * g *
             (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (g + 0.044715 * g * g * g)));
    case GatedActivation::GeluErf:
      return 0.5 * g * (1.0 + std::erf(g / std::numbers::sqrt2));
  }
  return g;
}

// Rows [row0, row0 + rows) of a 2-D buffer, as a view.
Buffer rows_of(const Buffer& b, std::int64_t row0, std::int64_t rows) {
  const std::int64_t width = b.shape()[1];
  const std::size_t es = dtype_size(b.dtype());
  return b.view(static_cast<std::size_t>(row0 * width) * es,
                static_cast<std::size_t>(rows * width) * es, b.dtype(), {rows, width});
}

ops::QuantizedWeight rows_of(const ops::QuantizedWeight& w, std::int64_t row0, std::int64_t rows) {
  return {rows_of(w.packed, row0, rows), rows_of(w.scales, row0, rows),
          rows_of(w.biases, row0, rows), w.bits, w.group_size};
}

// Element-wise identical bytes; on failure, how many elements differ and the first of them.
::testing::AssertionResult same_bits(const Buffer& got, const Buffer& want) {
  const auto a = got.to_vector<unsigned char>();
  const auto b = want.to_vector<unsigned char>();
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  }
  const std::size_t es = dtype_size(got.dtype());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < a.size(); i += es) {
    if (std::memcmp(&a[i], &b[i], es) != 0) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  const std::vector<unsigned char> fa(a.begin() + first, a.begin() + first + es);
  const std::vector<unsigned char> fb(b.begin() + first, b.begin() + first + es);
  return ::testing::AssertionFailure()
         << bad << " of " << a.size() / es << " elements differ from the unfused sequence; first "
         << first / es << ": fused " << test::decode(got.dtype(), fa)[0] << ", unfused "
         << test::decode(got.dtype(), fb)[0];
}

// act(round(g)) * round(u) in double from the float64 products g, u ([m, 2n] gate then up).
std::vector<double> gated_ref(GatedActivation act, DType dt, const std::vector<double>& prod,
                              std::int64_t m, std::int64_t n) {
  std::vector<double> out(m * n);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      const double g = test::round_to(dt, static_cast<float>(prod[i * 2 * n + j]));
      const double u = test::round_to(dt, static_cast<float>(prod[i * 2 * n + n + j]));
      out[i * n + j] = act_ref(act, g) * u;
    }
  }
  return out;
}

// x [m, k] @ w^T for w [rows, k] given as float64 values, in float64.
std::vector<double> products(const std::vector<float>& x, const std::vector<double>& w,
                             std::int64_t m, std::int64_t rows, std::int64_t k) {
  std::vector<double> out(m * rows);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (std::int64_t c = 0; c < k; ++c) acc += double(x[i * k + c]) * w[r * k + c];
      out[i * rows + r] = acc;
    }
  }
  return out;
}

// Runs the fused op for every activation and the unfused sequence in one command buffer, and
// checks each fused output: written everywhere, bit-identical to the unfused one, and close to
// the float64 reference. `fused(enc, act, out)` and `product(enc, row0, out)` (the [m, n] product
// with weight rows [row0, row0 + n)) encode the op under test.
template <class Fused, class Product>
void expect_gated_matches(Device& device, DType dt, std::int64_t m, std::int64_t n,
                          const std::vector<double>& prod, const Fused& fused,
                          const Product& product) {
  const Buffer g = test::poisoned(device, dt, {m, n});
  const Buffer u = test::poisoned(device, dt, {m, n});
  std::vector<Buffer> got, want;
  CommandEncoder enc = device.command_encoder();
  product(enc, 0, g);
  product(enc, n, u);
  enc.barrier();
  for (GatedActivation act : kActs) {
    got.push_back(test::poisoned(device, dt, {m, n}));
    want.push_back(test::poisoned(device, dt, {m, n}));
    fused(enc, act, got.back());
    unfused_activation(enc, act, g, u, want.back());
  }
  enc.commit_and_wait();
  for (std::size_t a = 0; a < got.size(); ++a) {
    SCOPED_TRACE(act_name(kActs[a]));
    const std::vector<float> out = test::download(got[a]);
    ASSERT_EQ(test::count_non_finite(out), 0u) << "the fused op left elements unwritten";
    EXPECT_TRUE(same_bits(got[a], want[a]));
    EXPECT_LE(test::rel_l2(out, gated_ref(kActs[a], dt, prod, m, n)),
              test::dtype_tolerance(dt, 1e-5));
  }
}

std::string describe(DType dt, std::int64_t m, std::int64_t n, std::int64_t k) {
  return std::string(dtype_name(dt)) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
         " k=" + std::to_string(k);
}

// ---------------------------------------------------------------------------------------------
// Dense.

// x uniform in [-1, 1], w in [-3/sqrt(k), 3/sqrt(k)]: products of about unit size, where the
// activations are curved (and f16 stays far from overflow at any k).
void check_dense(Device& device, std::mt19937& rng, DType dt, std::int64_t m, std::int64_t n,
                 std::int64_t k) {
  SCOPED_TRACE(describe(dt, m, n, k));
  const float s = 3.0f / std::sqrt(static_cast<float>(k));
  const auto x = test::round_to(dt, test::random_floats(rng, m * k, -1.0f, 1.0f));
  const auto w = test::round_to(dt, test::random_floats(rng, 2 * n * k, -s, s));
  const Buffer xb = test::upload(device, x, dt, {m, k});
  const Buffer wb = test::upload(device, w, dt, {2 * n, k});
  const auto prod = products(x, std::vector<double>(w.begin(), w.end()), m, 2 * n, k);
  expect_gated_matches(
      device, dt, m, n, prod,
      [&](CommandEncoder& enc, GatedActivation act, const Buffer& out) {
        ops::matmul_gated(enc, xb, wb, out, act);
      },
      [&](CommandEncoder& enc, std::int64_t row0, const Buffer& out) {
        ops::matmul(enc, xb, rows_of(wb, row0, n), out);
      });
}

class MatmulGatedTest : public BackendTest {};

// n = 1 and 5 leave most of a block empty; 1024, 3000 and 4096 are the CUDA mat-vec's 4 and 8
// rows-per-block splits (a full and a partial last block). k = 64 and 4096 take the 16-byte
// path; 100 and 4098 are no multiple of 8 (the scalar path for f16/bf16, and for f32 at 4098).
TEST_P(MatmulGatedTest, DenseMatchesUnfusedSequenceBitForBit) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (std::int64_t n : {1, 5, 1024, 3000, 4096}) {
      for (std::int64_t k : {64, 100}) {
        for (std::int64_t m : kRows) check_dense(device(), rng, dt, m, n, k);
      }
    }
    // Long rows: the mat-vec's unrolled main loop and its tail.
    for (std::int64_t k : {4096, 4098}) {
      for (std::int64_t m : kRows) check_dense(device(), rng, dt, m, 37, k);
      check_dense(device(), rng, dt, 1, 300, k);
    }
  }
}

// Leading dims of x are rows, as in matmul; m = 4 runs fused, m = 9 the fallback.
TEST_P(MatmulGatedTest, LeadingDimsAreRows) {
  auto rng = test::seeded_rng();
  const std::int64_t n = 33, k = 64;
  for (Shape lead : {Shape{2, 2}, Shape{3, 3}}) {
    const std::int64_t m = lead[0] * lead[1];
    SCOPED_TRACE("m = " + std::to_string(m));
    const auto x = test::round_to(DType::BF16, test::random_floats(rng, m * k, -1.0f, 1.0f));
    const auto w = test::round_to(DType::BF16, test::random_floats(rng, 2 * n * k, -0.3f, 0.3f));
    const Buffer x3 = test::upload(device(), x, DType::BF16, {lead[0], lead[1], k});
    const Buffer x2 = test::upload(device(), x, DType::BF16, {m, k});
    const Buffer wb = test::upload(device(), w, DType::BF16, {2 * n, k});
    const Buffer got = test::poisoned(device(), DType::BF16, {lead[0], lead[1], n});
    const Buffer want = test::poisoned(device(), DType::BF16, {m, n});
    CommandEncoder enc = device().command_encoder();
    ops::matmul_gated(enc, x3, wb, got, GatedActivation::Silu);
    ops::matmul_gated(enc, x2, wb, want, GatedActivation::Silu);
    enc.commit_and_wait();
    EXPECT_EQ(test::count_non_finite(test::download(got)), 0u);
    EXPECT_TRUE(same_bits(got, want));
  }
}

// ---------------------------------------------------------------------------------------------
// MLX affine quantized (packer and weight maker as in quantized_matmul_test.cpp).

// Packs codes [rows, k] into one LSB-first bit stream per row, bit by bit: stream bit b of a row
// is bit b % 32 of word b / 32.
std::vector<std::uint32_t> pack_bits(const std::vector<std::uint8_t>& codes, std::int64_t rows,
                                     std::int64_t k, int bits) {
  const std::int64_t words = k * bits / 32;
  std::vector<std::uint32_t> out(rows * words, 0u);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < k; ++j) {
      for (int b = 0; b < bits; ++b) {
        if ((codes[r * k + j] >> b) & 1u) {
          const std::int64_t bit = j * bits + b;
          out[r * words + bit / 32] |= 1u << (bit % 32);
        }
      }
    }
  }
  return out;
}

// A random quantized [rows, k] weight and its exact values (scale * q + bias, float64).
struct MlxWeight {
  int bits, group;
  std::int64_t rows, k;
  DType scale_dtype;
  std::vector<std::uint8_t> codes;
  std::vector<float> scales, biases;  // already rounded to scale_dtype
  std::vector<double> dense;
};

MlxWeight make_weight(std::mt19937& rng, int bits, int group, std::int64_t rows, std::int64_t k,
                      DType scale_dtype) {
  MlxWeight w{bits, group, rows, k, scale_dtype, {}, {}, {}, {}};
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  w.codes.resize(rows * k);
  for (auto& c : w.codes) c = static_cast<std::uint8_t>(code(rng));
  // Scales of either sign spanning about [-2, 2] over the code range, as MLX's quantizer makes.
  const float span = 2.0f / static_cast<float>((1 << bits) - 1);
  w.scales = test::round_to(scale_dtype, test::random_floats(rng, rows * k / group, -span, span));
  w.biases = test::round_to(scale_dtype, test::random_floats(rng, rows * k / group, -1.0f, 1.0f));
  w.dense.resize(rows * k);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int64_t g = r * (k / group) + j / group;
      w.dense[r * k + j] = double(w.scales[g]) * w.codes[r * k + j] + double(w.biases[g]);
    }
  }
  return w;
}

ops::QuantizedWeight upload_weight(Device& device, const MlxWeight& w) {
  ops::QuantizedWeight q;
  q.packed = device.alloc(DType::U32, {w.rows, w.k * w.bits / 32});
  q.packed.write(pack_bits(w.codes, w.rows, w.k, w.bits));
  q.scales = test::upload(device, w.scales, w.scale_dtype, {w.rows, w.k / w.group});
  q.biases = test::upload(device, w.biases, w.scale_dtype, {w.rows, w.k / w.group});
  q.bits = w.bits;
  q.group_size = w.group;
  return q;
}

// Weight values lie in about [-3, 3]; x in [-1.5/sqrt(k), 1.5/sqrt(k)] keeps products near 1.
void check_quantized(Device& device, std::mt19937& rng, DType dt, int bits, int group, DType sdt,
                     std::int64_t m, std::int64_t n, std::int64_t k) {
  SCOPED_TRACE(describe(dt, m, n, k) + " bits=" + std::to_string(bits) +
               " group=" + std::to_string(group) + " scales=" + std::string(dtype_name(sdt)));
  const float a = 1.5f / std::sqrt(static_cast<float>(k));
  const MlxWeight w = make_weight(rng, bits, group, 2 * n, k, sdt);
  const auto x = test::round_to(dt, test::random_floats(rng, m * k, -a, a));
  const ops::QuantizedWeight q = upload_weight(device, w);
  const Buffer xb = test::upload(device, x, dt, {m, k});
  expect_gated_matches(
      device, dt, m, n, products(x, w.dense, m, 2 * n, k),
      [&](CommandEncoder& enc, GatedActivation act, const Buffer& out) {
        ops::quantized_matmul_gated(enc, xb, q, out, act);
      },
      [&](CommandEncoder& enc, std::int64_t row0, const Buffer& out) {
        ops::quantized_matmul(enc, xb, rows_of(q, row0, n), out);
      });
}

class QuantizedMatmulGatedTest : public BackendTest {};

// Every bits x group size x activation dtype, scales in x's dtype and in f32 (bf16 for f32 x);
// n = 37 outputs (74 weight rows), k five groups.
TEST_P(QuantizedMatmulGatedTest, EveryBitsAndGroupMatchesUnfusedSequenceBitForBit) {
  auto rng = test::seeded_rng();
  for (int bits : kBits) {
    for (int group : kGroups) {
      for (DType dt : kFloatTypes) {
        for (DType sdt : {dt, dt == DType::F32 ? DType::BF16 : DType::F32}) {
          for (std::int64_t m : kRows) {
            check_quantized(device(), rng, dt, bits, group, sdt, m, 37, 5 * group);
          }
        }
      }
    }
  }
}

// Long rows (the CUDA mat-vec's unrolled loop, its first chunks and its tail) and wider outputs
// (several blocks, a partial last one).
TEST_P(QuantizedMatmulGatedTest, LongRowsMatchUnfusedSequenceBitForBit) {
  auto rng = test::seeded_rng();
  for (int bits : {3, 4, 8}) {
    for (DType dt : {DType::BF16, DType::F16}) {
      for (std::int64_t m : kRows) {
        check_quantized(device(), rng, dt, bits, 64, dt, m, 19, 4096 + 64);
      }
      check_quantized(device(), rng, dt, bits, 128, DType::F32, 1, 300, 4096);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Which form runs: one gated dispatch for up to 8 rows of x (CUDA: MLX 4 and 8 bits only), else
// the two products and the activation op.

// The dispatches `encode` records (barriers dropped).
template <class F>
std::vector<GraphNode> recorded(Device& device, const F& encode) {
  ComputeGraph graph;
  CommandEncoder enc = device.command_encoder();
  enc.begin_capture(graph);
  encode(enc);
  enc.end_capture();
  std::vector<GraphNode> out;
  for (const GraphNode& node : graph.nodes()) {
    if (node.kind == GraphNode::Kind::Dispatch) out.push_back(node);
  }
  return out;
}

template <class P>
P params_of(const GraphNode& node) {
  P p{};
  EXPECT_EQ(node.params.size(), sizeof(P));
  std::memcpy(&p, node.params.data(), std::min(sizeof(P), node.params.size()));
  return p;
}

// Dense: fused for one row of x only, since the unfused dense matmul takes the GEMM from two
// rows on (a different summation order: the fused result would not be bit-identical).
TEST_P(MatmulGatedTest, FusedForOneRowOfX) {
  const std::int64_t n = 16, k = 64;
  const Buffer w = device().alloc(DType::BF16, {2 * n, k});
  for (std::int64_t m : {1, 2, 9}) {
    for (GatedActivation act : kActs) {
      SCOPED_TRACE("m = " + std::to_string(m) + " " + act_name(act));
      const Buffer x = device().alloc(DType::BF16, {m, k});
      const Buffer out = device().alloc(DType::BF16, {m, n});
      const auto nodes =
          recorded(device(), [&](CommandEncoder& enc) { ops::matmul_gated(enc, x, w, out, act); });
      if (m == 1) {
        ASSERT_EQ(nodes.size(), 1u);
        const auto p = params_of<ops::MatmulParams>(nodes[0]);
        EXPECT_EQ(p.gate_act, gate_act_code(act));
        EXPECT_EQ(p.n, n);
        EXPECT_EQ(p.m, m);
      } else {
        ASSERT_EQ(nodes.size(), 3u);  // gate product, up product, activation
        EXPECT_EQ(params_of<ops::MatmulParams>(nodes[0]).gate_act, ops::kGateNone);
        EXPECT_EQ(params_of<ops::MatmulParams>(nodes[1]).gate_act, ops::kGateNone);
      }
    }
  }
}

TEST_P(QuantizedMatmulGatedTest, FusedForUpToEightRowsOfX) {
  auto rng = test::seeded_rng();
  const std::int64_t n = 16, k = 64;
  for (int bits : kBits) {
    const ops::QuantizedWeight q =
        upload_weight(device(), make_weight(rng, bits, 32, 2 * n, k, DType::BF16));
    for (std::int64_t m : {1, 8, 9}) {
      SCOPED_TRACE("bits " + std::to_string(bits) + " m = " + std::to_string(m));
      const Buffer x = device().alloc(DType::BF16, {m, k});
      const Buffer out = device().alloc(DType::BF16, {m, n});
      const auto nodes = recorded(device(), [&](CommandEncoder& enc) {
        ops::quantized_matmul_gated(enc, x, q, out, GatedActivation::GeluErf);
      });
      const bool fused = m <= 8 && (!is_cuda() || bits == 4 || bits == 8);
      if (fused) {
        ASSERT_EQ(nodes.size(), 1u);
        const auto p = params_of<ops::QuantMatmulParams>(nodes[0]);
        EXPECT_EQ(p.gate_act, ops::kGateGeluErf);
        EXPECT_EQ(p.n, n);
        EXPECT_EQ(p.m, m);
      } else {
        ASSERT_EQ(nodes.size(), 3u);
        EXPECT_EQ(params_of<ops::QuantMatmulParams>(nodes[0]).gate_act, ops::kGateNone);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Argument checks.

// Expects `stmt` to throw mlxn::Error of `kind` whose message contains `text`.
#define EXPECT_ERROR_MENTIONS(stmt, expected_kind, text)                                  \
  do {                                                                                    \
    auto err_ = ::mlxn::test::capture_error([&] { stmt; });                               \
    if (err_) {                                                                           \
      EXPECT_EQ(err_->kind(), expected_kind) << "message: " << err_->what();              \
      EXPECT_NE(std::string(err_->what()).find(text), std::string::npos) << err_->what(); \
    }                                                                                     \
  } while (0)

TEST_P(MatmulGatedTest, RejectsBadArguments) {
  const Buffer x = device().alloc(DType::F32, {2, 8});
  const Buffer w = device().alloc(DType::F32, {6, 8});  // n = 3
  const Buffer out = device().alloc(DType::F32, {2, 3});
  CommandEncoder enc = device().command_encoder();
  const auto act = GatedActivation::Silu;
  // An odd number of rows cannot be gate rows then as many up rows.
  EXPECT_ERROR_MENTIONS(ops::matmul_gated(enc, x, device().alloc(DType::F32, {5, 8}), out, act),
                        ErrorKind::InvalidArgument, "gated");
  EXPECT_ERROR_MENTIONS(ops::matmul_gated(enc, x, device().alloc(DType::F32, {6, 8, 1}), out, act),
                        ErrorKind::InvalidArgument, "gated");
  // out as wide as w's rows (2n) instead of n.
  EXPECT_ERROR_MENTIONS(ops::matmul_gated(enc, x, w, device().alloc(DType::F32, {2, 6}), act),
                        ErrorKind::InvalidArgument, "matmul");
  EXPECT_ERROR_MENTIONS(ops::matmul_gated(enc, x, w, device().alloc(DType::F32, {3, 3}), act),
                        ErrorKind::InvalidArgument, "matmul");
  EXPECT_ERROR_MENTIONS(ops::matmul_gated(enc, x, device().alloc(DType::F16, {6, 8}), out, act),
                        ErrorKind::InvalidArgument, "matmul");
  EXPECT_ERROR_MENTIONS(ops::matmul_gated(enc, x, w, device().alloc(DType::BF16, {2, 3}), act),
                        ErrorKind::InvalidArgument, "matmul");
  EXPECT_ERROR_MENTIONS(ops::matmul_gated(enc, device().alloc(DType::F32, {2, 7}), w, out, act),
                        ErrorKind::InvalidArgument, "matmul");
  MLXN_EXPECT_ERROR(
      ops::matmul_gated(enc, device().alloc(DType::I32, {2, 8}), device().alloc(DType::I32, {6, 8}),
                        device().alloc(DType::I32, {2, 3}), act),
      ErrorKind::UnsupportedDType);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

TEST_P(QuantizedMatmulGatedTest, RejectsBadArguments) {
  auto rng = test::seeded_rng();
  const ops::QuantizedWeight q =
      upload_weight(device(), make_weight(rng, 4, 64, 6, 128, DType::F32));  // n = 3
  const Buffer x = device().alloc(DType::F32, {2, 128});
  const Buffer out = device().alloc(DType::F32, {2, 3});
  CommandEncoder enc = device().command_encoder();
  const auto act = GatedActivation::GeluTanh;
  constexpr const char* kOp = "quantized_matmul_gated";
  EXPECT_ERROR_MENTIONS(
      ops::quantized_matmul_gated(
          enc, x, upload_weight(device(), make_weight(rng, 4, 64, 5, 128, DType::F32)), out, act),
      ErrorKind::InvalidArgument, kOp);
  EXPECT_ERROR_MENTIONS(
      ops::quantized_matmul_gated(enc, x, q, device().alloc(DType::F32, {2, 6}), act),
      ErrorKind::InvalidArgument, kOp);
  EXPECT_ERROR_MENTIONS(
      ops::quantized_matmul_gated(enc, x, q, device().alloc(DType::F16, {2, 3}), act),
      ErrorKind::InvalidArgument, kOp);
  EXPECT_ERROR_MENTIONS(
      ops::quantized_matmul_gated(enc, device().alloc(DType::F32, {2, 64}), q, out, act),
      ErrorKind::InvalidArgument, kOp);
  ops::QuantizedWeight bad = q;
  bad.biases = device().alloc(DType::F32, {6, 1});
  EXPECT_ERROR_MENTIONS(ops::quantized_matmul_gated(enc, x, bad, out, act),
                        ErrorKind::InvalidArgument, kOp);
  bad = q;
  bad.bits = 7;
  MLXN_EXPECT_ERROR(ops::quantized_matmul_gated(enc, x, bad, out, act), ErrorKind::QuantConfig);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(MatmulGatedTest);
MLXN_INSTANTIATE_BACKENDS(QuantizedMatmulGatedTest);

// ---------------------------------------------------------------------------------------------
// CUDA vs the CPU reference at a decode shape (x bf16 [1, 4096], a gate/up weight of 2 x 1536
// rows), within the tolerance of the other CUDA-vs-CPU matmul tests.
class MatmulGatedCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    cuda_ = test::open_cuda_or_reason(reason);
    if (!cuda_) GTEST_SKIP() << "no CUDA device: " << reason;
  }
  std::optional<Device> cuda_;
  Device cpu_ = Device::open(Backend::Cpu);
};

constexpr std::int64_t kDecodeN = 1536, kDecodeK = 4096;

TEST_F(MatmulGatedCudaTest, DecodeShapeMatchesCpu) {
  auto rng = test::seeded_rng();
  const DType dt = DType::BF16;
  const auto x = test::round_to(dt, test::random_floats(rng, kDecodeK, -1.0f, 1.0f));
  const float s = 3.0f / std::sqrt(static_cast<float>(kDecodeK));
  const auto wd = test::round_to(dt, test::random_floats(rng, 2 * kDecodeN * kDecodeK, -s, s));
  const MlxWeight w4 = make_weight(rng, 4, 64, 2 * kDecodeN, kDecodeK, dt);
  const MlxWeight w8 = make_weight(rng, 8, 64, 2 * kDecodeN, kDecodeK, dt);
  const auto xq = test::round_to(
      dt, test::random_floats(rng, kDecodeK, -1.5f / 64.0f, 1.5f / 64.0f));  // 1.5 / sqrt(k)
  for (GatedActivation act : kActs) {
    auto run = [&](Device& device, int form) {
      const Buffer out = test::poisoned(device, dt, {1, kDecodeN});
      CommandEncoder enc = device.command_encoder();
      if (form == 0) {
        ops::matmul_gated(enc, test::upload(device, x, dt, {1, kDecodeK}),
                          test::upload(device, wd, dt, {2 * kDecodeN, kDecodeK}), out, act);
      } else {
        ops::quantized_matmul_gated(enc, test::upload(device, xq, dt, {1, kDecodeK}),
                                    upload_weight(device, form == 4 ? w4 : w8), out, act);
      }
      enc.commit_and_wait();
      return test::download(out);
    };
    for (int form : {0, 4, 8}) {
      SCOPED_TRACE(std::string(act_name(act)) + (form == 0 ? " dense" : " MLX bits ") +
                   (form == 0 ? "" : std::to_string(form)));
      const auto want = run(cpu_, form);
      const auto got = run(*cuda_, form);
      EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())), 1e-2);
    }
  }
}

}  // namespace
}  // namespace mlxn
