// Buffer::mark_immutable: every view of the storage sees it, a dispatch that writes the storage
// throws InvalidArgument (reads, host writes stay allowed), the matmul ops tell their kernels
// (weights_static) when all of a weight is immutable, and results with immutable weights are
// bit-identical to those with unmarked copies -- on CUDA the m == 1 mat-vecs then load weights
// before waiting on the kernel that wrote x, which here is still writing it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/compute_graph.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/quantized_matmul.h"
#include "ops/matmul_params.h"
#include "ops/op_params.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

class ImmutableBufferTest : public BackendTest {};

// Expects `stmt` to throw InvalidArgument saying that it writes an immutable buffer.
#define EXPECT_WRITE_REJECTED(stmt)                                                              \
  do {                                                                                           \
    auto err_ = ::mlxn::test::capture_error([&] { stmt; });                                      \
    if (err_) {                                                                                  \
      EXPECT_EQ(err_->kind(), ErrorKind::InvalidArgument) << "message: " << err_->what();        \
      EXPECT_NE(std::string(err_->what()).find("immutable"), std::string::npos) << err_->what(); \
    }                                                                                            \
  } while (0)

TEST_P(ImmutableBufferTest, BuffersStartMutable) {
  EXPECT_FALSE(Buffer().is_immutable());
  const Buffer b = device().alloc(DType::F32, {8});
  EXPECT_FALSE(b.is_immutable());
  EXPECT_FALSE(b.slice(2, 3).is_immutable());
  MLXN_EXPECT_ERROR(Buffer().mark_immutable(), ErrorKind::InvalidArgument);
}

TEST_P(ImmutableBufferTest, MarkingCoversEveryViewOfTheStorage) {
  const Buffer whole = device().alloc(DType::F32, {4, 8});
  const Buffer other = device().alloc(DType::F32, {4, 8});
  const Buffer before = whole.view(32, 64, DType::F32, {2, 8});  // rows 1 and 2
  const Buffer copy = whole;
  // Marking through a view marks the storage: the whole buffer and views made before and after.
  before.slice(0, 1).mark_immutable();
  EXPECT_TRUE(whole.is_immutable());
  EXPECT_TRUE(before.is_immutable());
  EXPECT_TRUE(copy.is_immutable());
  EXPECT_TRUE(whole.view(96, 32, DType::F32, {8}).is_immutable());  // a row the mark missed
  EXPECT_TRUE(whole.reshape({32}).is_immutable());
  EXPECT_TRUE(whole.view(0, 16, DType::U8, {16}).is_immutable());
  EXPECT_FALSE(other.is_immutable());
  // Marking twice is harmless.
  whole.mark_immutable();
  EXPECT_TRUE(whole.is_immutable());
}

TEST_P(ImmutableBufferTest, DispatchThatWritesItThrows) {
  const std::vector<float> values = {1, 2, 3, 4, 5, 6, 7, 8};
  const Buffer a = test::upload(device(), values, DType::F32, {8});
  const Buffer b = test::upload(device(), values, DType::F32, {8});
  const Buffer weights = test::upload(device(), values, DType::F32, {2, 4});
  const Buffer before = weights.view(16, 16, DType::F32, {4});  // made before marking
  weights.mark_immutable();
  const Buffer after = weights.view(0, 16, DType::F32, {4});
  CommandEncoder enc = device().command_encoder();
  EXPECT_WRITE_REJECTED(ops::add(enc, a, b, weights.reshape({8})));
  EXPECT_WRITE_REJECTED(ops::add(enc, a.slice(0, 4), b.slice(0, 4), before));
  EXPECT_WRITE_REJECTED(ops::add(enc, a.slice(0, 4), b.slice(0, 4), after));
  // In place: the immutable buffer is both read and written.
  EXPECT_WRITE_REJECTED(ops::add(enc, after, after, after));
  EXPECT_WRITE_REJECTED(ops::matmul(enc, a.reshape({2, 4}), b.reshape({2, 4}),
                                    weights.view(0, 16, DType::F32, {2, 2})));
  // A read-write binding of a raw dispatch counts as a write.
  const ops::BinaryParams p{4};
  EXPECT_WRITE_REJECTED(
      enc.dispatch(device().kernels().get("add", DType::F32),
                   {Arg::in(a.slice(0, 4)), Arg::in(b.slice(0, 4)), Arg::inout(before)}, p, "add"));
  EXPECT_EQ(enc.pending_dispatches(), 0u);
  // Nothing was queued and the encoder still works; the storage kept its values.
  enc.commit_and_wait();
  EXPECT_EQ(weights.to_vector<float>(), values);
}

TEST_P(ImmutableBufferTest, ReadingItWorks) {
  const std::vector<float> values = {1.5f, -2, 3, 4, 0.25f, 6, 7, -8};
  const Buffer imm = test::upload(device(), values, DType::F32, {8});
  imm.mark_immutable();
  const Buffer sum = test::poisoned(device(), DType::F32, {8});
  const Buffer half_sum = test::poisoned(device(), DType::F32, {4});
  CommandEncoder enc = device().command_encoder();
  ops::add(enc, imm, imm, sum);
  ops::add(enc, imm.slice(0, 4), imm.slice(4, 4), half_sum);
  enc.commit_and_wait();
  const auto got = sum.to_vector<float>();
  const auto got_half = half_sum.to_vector<float>();
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(got[i], 2 * values[i]) << i;
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(got_half[i], values[i] + values[i + 4]) << i;
}

TEST_P(ImmutableBufferTest, HostWritesStayAllowed) {
  const Buffer b = device().alloc(DType::F32, {4});
  b.mark_immutable();
  const std::vector<float> values = {1, 2, 3, 4};
  Buffer(b).write(values);
  EXPECT_EQ(b.to_vector<float>(), values);
  EXPECT_TRUE(b.is_immutable());
}

TEST_P(ImmutableBufferTest, CaptureRejectsWritingIt) {
  const Buffer a = device().alloc(DType::F32, {8});
  const Buffer imm = device().alloc(DType::F32, {8});
  imm.mark_immutable();
  ComputeGraph graph;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(graph);
  EXPECT_WRITE_REJECTED(ops::add(enc, a, a, imm));
  ops::add(enc, imm, imm, a);  // reading it is recorded
  enc.end_capture();
  EXPECT_EQ(graph.dispatch_count(), 1u);
}

// ---------------------------------------------------------------------------------------------
// The matmul ops and immutable weights.

template <class P>
P params_of(const GraphNode& node) {
  P p{};
  EXPECT_EQ(node.params.size(), sizeof(P));
  std::memcpy(&p, node.params.data(), std::min(sizeof(P), node.params.size()));
  return p;
}

// The params of the single dispatch `encode` records.
template <class P, class F>
P recorded_params(Device& device, const F& encode) {
  ComputeGraph graph;
  CommandEncoder enc = device.command_encoder();
  enc.begin_capture(graph);
  encode(enc);
  enc.end_capture();
  if (graph.dispatch_count() != 1u) {
    ADD_FAILURE() << "expected one dispatch, got " << graph.dispatch_count();
    return P{};
  }
  for (const GraphNode& node : graph.nodes()) {
    if (node.kind == GraphNode::Kind::Dispatch) return params_of<P>(node);
  }
  return P{};
}

ops::QuantizedWeight alloc_quantized(Device& device, std::int64_t rows, std::int64_t k, int bits,
                                     int group) {
  ops::QuantizedWeight q;
  q.packed = device.alloc(DType::U32, {rows, k * bits / 32});
  q.scales = device.alloc(DType::BF16, {rows, k / group});
  q.biases = device.alloc(DType::BF16, {rows, k / group});
  q.bits = bits;
  q.group_size = group;
  return q;
}

TEST_P(ImmutableBufferTest, MatmulsTellKernelsWhenWeightsAreImmutable) {
  if (std::getenv("MLXN_NO_PRELOAD") != nullptr) {
    GTEST_SKIP() << "MLXN_NO_PRELOAD is set: the ops never report immutable weights";
  }
  const std::int64_t k = 128;
  const DType dt = DType::BF16;
  const Buffer x = device().alloc(dt, {1, k});
  const Buffer out = device().alloc(dt, {1, 8});
  const Buffer w_plain = device().alloc(dt, {8, k});
  const Buffer w_imm = device().alloc(dt, {16, k});
  const Buffer bias_plain = device().alloc(dt, {8});
  const Buffer bias_imm = device().alloc(dt, {8});
  w_imm.mark_immutable();
  bias_imm.mark_immutable();
  const std::size_t half = 8 * k * dtype_size(dt);
  const Buffer w_rows = w_imm.view(half, half, dt, {8, k});  // a view of an immutable storage
  using MP = ops::MatmulParams;
  auto dense = [&](const Buffer& w) {
    return recorded_params<MP>(device(), [&](CommandEncoder& e) { ops::matmul(e, x, w, out); });
  };
  auto dense_bias = [&](const Buffer& w, const Buffer& bias) {
    return recorded_params<MP>(device(),
                               [&](CommandEncoder& e) { ops::matmul(e, x, w, bias, out); });
  };
  EXPECT_EQ(dense(w_plain).weights_static, 0);
  EXPECT_EQ(dense(w_rows).weights_static, 1);
  EXPECT_EQ(dense_bias(w_rows, bias_imm).weights_static, 1);
  EXPECT_EQ(dense_bias(w_rows, bias_plain).weights_static, 0);  // every bound weight must be
  EXPECT_EQ(dense_bias(w_plain, bias_imm).weights_static, 0);
  const Buffer w_gated_plain = device().alloc(dt, {16, k});
  auto gated = [&](const Buffer& w) {
    return recorded_params<MP>(device(), [&](CommandEncoder& e) {
      ops::matmul_gated(e, x, w, out, ops::GatedActivation::Silu);
    });
  };
  EXPECT_EQ(gated(w_imm).weights_static, 1);
  EXPECT_EQ(gated(w_gated_plain).weights_static, 0);

  for (int bits : {4, 8}) {
    SCOPED_TRACE("bits " + std::to_string(bits));
    using QP = ops::QuantMatmulParams;
    ops::QuantizedWeight q = alloc_quantized(device(), 16, k, bits, 64);
    auto quantized = [&](const ops::QuantizedWeight& w, bool gate) {
      return recorded_params<QP>(device(), [&](CommandEncoder& e) {
        if (gate) {
          ops::quantized_matmul_gated(e, x, w, out, ops::GatedActivation::Silu);
        } else {
          ops::quantized_matmul(e, x, w, device().alloc(dt, {1, 16}));
        }
      });
    };
    EXPECT_EQ(quantized(q, false).weights_static, 0);
    EXPECT_EQ(quantized(q, true).weights_static, 0);
    q.packed.mark_immutable();
    q.scales.mark_immutable();
    EXPECT_EQ(quantized(q, false).weights_static, 0) << "the biases are not immutable";
    q.biases.mark_immutable();
    EXPECT_EQ(quantized(q, false).weights_static, 1);
    EXPECT_EQ(quantized(q, true).weights_static, 1);
  }
}

// x = the tail of a large add's output: the kernel that writes x is the one right before the
// matmul and still running when that starts (CUDA, programmatic dependent launch), and x holds
// NaN until it has been written, so a matmul that reads x too early gives NaN.
Buffer produce_x(Device& device, CommandEncoder& enc, const std::vector<float>& x, DType dt,
                 Shape shape) {
  constexpr std::int64_t kLead = std::int64_t{1} << 20;
  const std::int64_t n = static_cast<std::int64_t>(x.size());
  const std::size_t es = dtype_size(dt);
  Buffer a = device.alloc(dt, {kLead + n});  // zero-filled
  const Buffer b = device.alloc(dt, {kLead + n});
  const auto bytes = test::encode(dt, x);
  a.write(bytes.data(), bytes.size(), static_cast<std::size_t>(kLead) * es);
  const Buffer sum = test::poisoned(device, dt, {kLead + n});
  ops::add(enc, a, b, sum);
  enc.barrier();
  return sum.view(static_cast<std::size_t>(kLead) * es, static_cast<std::size_t>(n) * es, dt,
                  std::move(shape));
}

// A host copy of a buffer's bytes in a new, unmarked buffer.
Buffer unmarked_copy(Device& device, const Buffer& b) {
  Buffer c = device.alloc(b.dtype(), b.shape());
  c.write(b.to_vector<unsigned char>());
  return c;
}

// Runs `op(enc, x, weights, out)` twice in one command buffer, each time right after the kernel
// that writes x: with `imm` (marked immutable here) and with unmarked copies. Same bits expected.
template <class W, class Op>
void expect_same_bits_as_unmarked(Device& device, std::mt19937& rng, std::int64_t k,
                                  std::int64_t n_out, const W& imm, const W& plain, const Op& op) {
  const DType dt = DType::BF16;
  const auto x = test::round_to(
      dt, test::random_floats(rng, k, -2.0f / std::sqrt(float(k)), 2.0f / std::sqrt(float(k))));
  const Buffer out_imm = test::poisoned(device, dt, {1, n_out});
  const Buffer out_plain = test::poisoned(device, dt, {1, n_out});
  CommandEncoder enc = device.command_encoder();
  op(enc, produce_x(device, enc, x, dt, {1, k}), imm, out_imm);
  op(enc, produce_x(device, enc, x, dt, {1, k}), plain, out_plain);
  enc.commit_and_wait();
  const auto got = out_imm.to_vector<std::uint16_t>();
  const auto want = out_plain.to_vector<std::uint16_t>();
  EXPECT_EQ(test::count_non_finite(test::download(out_plain)), 0u) << "unmarked weights";
  EXPECT_EQ(test::count_non_finite(test::download(out_imm)), 0u) << "immutable weights";
  EXPECT_TRUE(std::any_of(want.begin(), want.end(), [](std::uint16_t v) { return v != 0; }));
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) bad += got[i] != want[i];
  EXPECT_EQ(bad, 0u) << "of " << got.size() << " outputs differ with immutable weights";
}

Buffer random_dense(Device& device, std::mt19937& rng, std::int64_t rows, std::int64_t k) {
  return test::upload(device, test::round_to(DType::BF16, test::random_floats(rng, rows * k)),
                      DType::BF16, {rows, k});
}

ops::QuantizedWeight random_quantized(Device& device, std::mt19937& rng, std::int64_t rows,
                                      std::int64_t k, int bits, int group) {
  ops::QuantizedWeight q = alloc_quantized(device, rows, k, bits, group);
  std::vector<std::uint32_t> words(static_cast<std::size_t>(rows * k * bits / 32));
  for (auto& w : words) w = static_cast<std::uint32_t>(rng());
  q.packed.write(words);
  const float span = 2.0f / static_cast<float>((1 << bits) - 1);
  test::upload_to(q.scales, test::random_floats(rng, rows * k / group, -span, span));
  test::upload_to(q.biases, test::random_floats(rng, rows * k / group, -1.0f, 1.0f));
  return q;
}

ops::QuantizedWeight unmarked_copy(Device& device, const ops::QuantizedWeight& q) {
  return {unmarked_copy(device, q.packed), unmarked_copy(device, q.scales),
          unmarked_copy(device, q.biases), q.bits, q.group_size};
}

void mark(const ops::QuantizedWeight& q) {
  q.packed.mark_immutable();
  q.scales.mark_immutable();
  q.biases.mark_immutable();
}

TEST_P(ImmutableBufferTest, ImmutableDenseWeightsGiveTheSameBits) {
  auto rng = test::seeded_rng();
  // k = 4096 starts with the preloaded chunks (n = 4100: the 8-rows-per-block split); 1000 has
  // too few chunks for them, 1001 is unaligned.
  struct Case {
    std::int64_t n, k;
  };
  for (Case c : {Case{1000, 4096}, Case{999, 1000}, Case{333, 1001}, Case{4100, 4096}}) {
    SCOPED_TRACE("matmul n=" + std::to_string(c.n) + " k=" + std::to_string(c.k));
    const Buffer w = random_dense(device(), rng, c.n, c.k);
    const Buffer plain = unmarked_copy(device(), w);
    w.mark_immutable();
    expect_same_bits_as_unmarked(device(), rng, c.k, c.n, w, plain,
                                 [](CommandEncoder& enc, const Buffer& x, const Buffer& wt,
                                    const Buffer& out) { ops::matmul(enc, x, wt, out); });
  }
  for (Case c : {Case{512, 4096}, Case{333, 1000}}) {
    SCOPED_TRACE("matmul_gated n=" + std::to_string(c.n) + " k=" + std::to_string(c.k));
    const Buffer w = random_dense(device(), rng, 2 * c.n, c.k);
    const Buffer plain = unmarked_copy(device(), w);
    w.mark_immutable();
    expect_same_bits_as_unmarked(
        device(), rng, c.k, c.n, w, plain,
        [](CommandEncoder& enc, const Buffer& x, const Buffer& wt, const Buffer& out) {
          ops::matmul_gated(enc, x, wt, out, ops::GatedActivation::Silu);
        });
  }
}

TEST_P(ImmutableBufferTest, ImmutableQuantizedWeightsGiveTheSameBits) {
  auto rng = test::seeded_rng();
  struct Case {
    int bits, group;
    std::int64_t n, k;
  };
  for (Case c : {Case{4, 64, 512, 4096}, Case{8, 64, 512, 4096}, Case{4, 32, 999, 1056},
                 Case{8, 32, 999, 1056}, Case{4, 128, 77, 128}}) {
    const std::string what = "bits=" + std::to_string(c.bits) +
                             " group=" + std::to_string(c.group) + " n=" + std::to_string(c.n) +
                             " k=" + std::to_string(c.k);
    {
      SCOPED_TRACE("quantized_matmul " + what);
      const ops::QuantizedWeight q = random_quantized(device(), rng, c.n, c.k, c.bits, c.group);
      const ops::QuantizedWeight plain = unmarked_copy(device(), q);
      mark(q);
      expect_same_bits_as_unmarked(
          device(), rng, c.k, c.n, q, plain,
          [](CommandEncoder& enc, const Buffer& x, const ops::QuantizedWeight& w,
             const Buffer& out) { ops::quantized_matmul(enc, x, w, out); });
    }
    {
      SCOPED_TRACE("quantized_matmul_gated " + what);
      const std::int64_t n = c.n / 2 + 1;
      const ops::QuantizedWeight q = random_quantized(device(), rng, 2 * n, c.k, c.bits, c.group);
      const ops::QuantizedWeight plain = unmarked_copy(device(), q);
      mark(q);
      expect_same_bits_as_unmarked(device(), rng, c.k, n, q, plain,
                                   [](CommandEncoder& enc, const Buffer& x,
                                      const ops::QuantizedWeight& w, const Buffer& out) {
                                     ops::quantized_matmul_gated(enc, x, w, out,
                                                                 ops::GatedActivation::GeluTanh);
                                   });
    }
  }
}

MLXN_INSTANTIATE_BACKENDS(ImmutableBufferTest);

}  // namespace
}  // namespace mlxn
