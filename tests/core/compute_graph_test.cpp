// ComputeGraph capture, replay, barrier recomputation, fusion, reordering, params and device
// graphs; GraphExecutor/GraphSession passes.
#include "mlxn/core/compute_graph.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "mlxn/core/counters.h"
#include "mlxn/core/graph_executor.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/norm.h"
#include "ops/op_params.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

// out[r, c] = x[r, c] / sqrt(mean(x[r, :]^2) + eps) * w[c] (* g[r, c]) in double.
std::vector<double> rms_norm_ref(const std::vector<float>& x, const std::vector<float>& w,
                                 std::int64_t rows, std::int64_t cols, float eps,
                                 const std::vector<float>* g = nullptr) {
  std::vector<double> out(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
    const double inv = 1.0 / std::sqrt(ss / cols + eps);
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::int64_t i = r * cols + c;
      out[i] = x[i] * inv * w[c] * (g ? (*g)[i] : 1.0);
    }
  }
  return out;
}

class GraphTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    rng_ = test::seeded_rng();
    for (auto* v : {&av_, &bv_, &cv_, &dv_}) *v = test::random_floats(rng_, kN);
    a_ = test::upload(device(), av_, DType::F32);
    b_ = test::upload(device(), bv_, DType::F32);
    c_ = test::upload(device(), cv_, DType::F32);
    d_ = test::upload(device(), dv_, DType::F32);
    for (auto* t : {&t1_, &t2_, &t3_, &t4_}) *t = test::poisoned(device(), DType::F32, {kN});
  }
  void poison_temps() {
    for (auto* t : {&t1_, &t2_, &t3_, &t4_}) test::poison(*t);
  }
  // t1 = a + b; t2 = c + d; t3 = t1 + t2; t4 = t3 * a, with a barrier after every dispatch
  // when `barriers`.
  void encode_diamond(CommandEncoder& enc, bool barriers) {
    ops::add(enc, a_, b_, t1_);
    if (barriers) enc.barrier();
    ops::add(enc, c_, d_, t2_);
    if (barriers) enc.barrier();
    ops::add(enc, t1_, t2_, t3_);
    if (barriers) enc.barrier();
    ops::mul(enc, t3_, a_, t4_);
  }
  void expect_diamond_results() {
    const auto t4 = t4_.to_vector<float>();
    for (int i = 0; i < kN; ++i) {
      ASSERT_EQ(t4[i], ((av_[i] + bv_[i]) + (cv_[i] + dv_[i])) * av_[i]) << i;
    }
  }

  static constexpr int kN = 4099;
  std::mt19937 rng_;
  std::vector<float> av_, bv_, cv_, dv_;
  Buffer a_, b_, c_, d_, t1_, t2_, t3_, t4_;
};

TEST_P(GraphTest, CaptureRecordsNodesInsteadOfEncoding) {
  ComputeGraph g;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(g);
  EXPECT_TRUE(enc.is_capturing());
  ops::add(enc, a_.slice(0, kN - 1), b_.slice(1, kN - 1), t1_.slice(1, kN - 1));
  enc.barrier();
  ops::mul(enc, t1_, c_, t2_);
  enc.end_capture();
  EXPECT_FALSE(enc.is_capturing());
  EXPECT_EQ(enc.pending_dispatches(), 0u) << "captured work is not encoded";
  ASSERT_EQ(g.nodes().size(), 3u);
  EXPECT_EQ(g.dispatch_count(), 2u);
  EXPECT_EQ(g.barrier_count(), 1u);
  const GraphNode& n0 = g.nodes()[0];
  EXPECT_EQ(n0.kind, GraphNode::Kind::Dispatch);
  EXPECT_EQ(n0.op, "add");
  ASSERT_NE(n0.kernel, nullptr);
  EXPECT_EQ(n0.kernel->name, "add");
  EXPECT_EQ(g.nodes()[1].kind, GraphNode::Kind::Barrier);
  EXPECT_EQ(g.nodes()[2].op, "mul");
  const auto r = n0.reads(), w = n0.writes();
  ASSERT_EQ(r.size(), 2u);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(r[0].storage, a_.storage_id());
  EXPECT_EQ(r[0].begin, 0u);
  EXPECT_EQ(r[0].end, 4u * (kN - 1));
  EXPECT_EQ(r[1].storage, b_.storage_id());
  EXPECT_EQ(r[1].begin, 4u);
  EXPECT_EQ(w[0].storage, t1_.storage_id());
  EXPECT_EQ(w[0].begin, 4u);
  EXPECT_EQ(w[0].end, 4u * kN);
  EXPECT_TRUE(n0.conflicts_with(g.nodes()[2])) << "mul reads t1, which add writes";
}

TEST_P(GraphTest, ReplayGivesTheSameResultsAsDirectEncoding) {
  ComputeGraph g;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(g);
  encode_diamond(enc, true);
  enc.end_capture();
  for (int round = 0; round < 2; ++round) {
    poison_temps();
    g.replay(enc);
    EXPECT_EQ(enc.pending_dispatches(), 4u);
    enc.commit_and_wait();
    expect_diamond_results();
  }
}

TEST_P(GraphTest, ReplayRecomputedEmitsTheMinimalBarriers) {
  ComputeGraph g;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(g);
  encode_diamond(enc, true);
  enc.end_capture();
  ASSERT_EQ(g.barrier_count(), 3u);
  const std::uint64_t before = counters::read().barriers;
  EXPECT_EQ(g.replay_recomputed(enc), 2u) << "t1 and t2 are independent";
  EXPECT_EQ(counters::read().barriers - before, 2u);
  enc.commit_and_wait();
  expect_diamond_results();

  g.recompute_barriers();
  std::vector<GraphNode::Kind> kinds;
  for (const auto& n : g.nodes()) kinds.push_back(n.kind);
  using K = GraphNode::Kind;
  EXPECT_EQ(kinds, (std::vector<K>{K::Dispatch, K::Dispatch, K::Barrier, K::Dispatch, K::Barrier,
                                   K::Dispatch}));
}

TEST_P(GraphTest, RecomputeBarriersAddsTheMissingOnes) {
  ComputeGraph g;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(g);
  encode_diamond(enc, false);
  enc.end_capture();
  EXPECT_EQ(g.barrier_count(), 0u);
  g.recompute_barriers();
  EXPECT_EQ(g.barrier_count(), 2u);
  poison_temps();
  g.replay(enc);
  enc.commit_and_wait();
  expect_diamond_results();
}

TEST_P(GraphTest, FuseTurnsRmsNormThenMulIntoOneNode) {
  constexpr std::int64_t rows = 5, cols = 300;
  const float eps = 1e-5f;
  const auto xv = test::random_floats(rng_, rows * cols), wv = test::random_floats(rng_, cols);
  const auto gv = test::random_floats(rng_, rows * cols);
  Buffer x = test::upload(device(), xv, DType::F32, {rows, cols});
  Buffer w = test::upload(device(), wv, DType::F32);
  Buffer gate = test::upload(device(), gv, DType::F32, {rows, cols});
  Buffer t = device().alloc(DType::F32, {rows, cols});
  Buffer out = test::poisoned(device(), DType::F32, {rows, cols});
  for (bool gate_first : {false, true}) {
    ComputeGraph g;
    CommandEncoder enc = device().command_encoder();
    enc.begin_capture(g);
    ops::rms_norm(enc, x, w, t, eps);
    enc.barrier();
    if (gate_first)
      ops::mul(enc, gate, t, out);
    else
      ops::mul(enc, t, gate, out);
    enc.end_capture();
    EXPECT_EQ(g.fuse(ops::rms_norm_mul_fusion(device().kernels())), 1u);
    ASSERT_EQ(g.dispatch_count(), 1u);
    EXPECT_EQ(g.nodes().back().op, "rms_norm_mul");
    test::poison(t);
    test::poison(out);
    g.replay(enc);
    enc.commit_and_wait();
    const double err =
        test::rel_l2(out.to_vector<float>(), rms_norm_ref(xv, wv, rows, cols, eps, &gv));
    EXPECT_LE(err, 1e-5) << "gate_first=" << gate_first;
    EXPECT_EQ(test::count_non_finite(t.to_vector<float>()), static_cast<std::size_t>(t.numel()))
        << "the fused kernel must not write the intermediate";
  }
}

TEST_P(GraphTest, NoFusionWhenTheIntermediateIsReadLater) {
  Buffer x = test::upload(device(), test::random_floats(rng_, 64), DType::F32, {2, 32});
  Buffer w = test::upload(device(), test::random_floats(rng_, 32), DType::F32);
  Buffer t = device().alloc(DType::F32, {2, 32}), gate = device().alloc(DType::F32, {2, 32});
  Buffer out = device().alloc(DType::F32, {2, 32}), out2 = device().alloc(DType::F32, {2, 32});
  ComputeGraph g;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(g);
  ops::rms_norm(enc, x, w, t, 1e-6f);
  ops::mul(enc, t, gate, out);
  ops::add(enc, t, gate, out2);
  enc.end_capture();
  EXPECT_EQ(g.fuse(ops::rms_norm_mul_fusion(device().kernels())), 0u);
  EXPECT_EQ(g.dispatch_count(), 3u);
}

TEST_P(GraphTest, ReorderPullsIndependentChainsTogether) {
  // Chain A: t1 = a + b; t2 = t1 * b; t3 = t2 + a.  Chain B: c = c + d; d2 = c * d; t4 = d2 + c.
  Buffer c2 = device().alloc(DType::F32, {kN});
  ComputeGraph g;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(g);
  ops::add(enc, a_, b_, t1_);
  ops::mul(enc, t1_, b_, t2_);
  ops::add(enc, t2_, a_, t3_);
  ops::add(enc, c_, d_, c2);
  ops::mul(enc, c2, d_, d_);
  ops::add(enc, d_, c2, t4_);
  enc.end_capture();
  g.recompute_barriers();
  const std::size_t before = g.barrier_count();
  EXPECT_EQ(before, 4u);
  EXPECT_GT(g.reorder(), 0u);
  EXPECT_EQ(g.dispatch_count(), 6u);
  EXPECT_LT(g.barrier_count(), before);
  EXPECT_EQ(g.barrier_count(), 2u);
  g.replay(enc);
  enc.commit_and_wait();
  const auto t3 = t3_.to_vector<float>(), t4 = t4_.to_vector<float>();
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(t3[i], (av_[i] + bv_[i]) * bv_[i] + av_[i]) << i;
    const float cc = cv_[i] + dv_[i];
    ASSERT_EQ(t4[i], cc * dv_[i] + cc) << i;
  }
}

TEST_P(GraphTest, SetParamsChangesTheReplay) {
  ComputeGraph g;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(g);
  ops::add(enc, a_, b_, t1_);
  enc.barrier();
  ops::add(enc, t1_, c_, t2_);
  enc.end_capture();
  g.set_params(0, ops::BinaryParams{kN / 2});
  g.replay(enc);
  enc.commit_and_wait();
  const auto t1 = t1_.to_vector<float>();
  for (int i = 0; i < kN / 2; ++i) ASSERT_EQ(t1[i], av_[i] + bv_[i]) << i;
  for (int i = kN / 2; i < kN; ++i) ASSERT_TRUE(std::isnan(t1[i])) << "beyond n: " << i;
  MLXN_EXPECT_ERROR(g.set_params(1, ops::BinaryParams{1}), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(g.set_params(0, ops::RmsNormParams{1, 1, 0.f}), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(g.set_params(9, ops::BinaryParams{1}), ErrorKind::InvalidArgument);
}

TEST_P(GraphTest, InstantiatedGraphLaunchesAndTakesNewParams) {
  constexpr std::int64_t rows = 7, cols = 33;
  const auto wv = test::random_floats(rng_, cols);
  Buffer x = device().alloc(DType::F32, {rows, cols});
  Buffer w = test::upload(device(), wv, DType::F32);
  Buffer xs = device().alloc(DType::F32, {rows, cols}),
         out = device().alloc(DType::F32, {rows, cols});
  ComputeGraph g;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(g);
  ops::add(enc, x, x, xs);  // xs = 2x
  enc.barrier();
  ops::rms_norm(enc, xs, w, out, 1e-6f);
  enc.end_capture();
  GraphExec exec = g.instantiate(device());
  ASSERT_TRUE(exec.valid());

  for (float eps : {1e-6f, 1e-6f, 50.0f}) {
    const auto xv = test::random_floats(rng_, rows * cols);
    test::upload_to(x, xv);  // the graph reads the buffers' current contents
    test::poison(out);
    if (eps != 1e-6f) exec.set_params(2, ops::RmsNormParams{rows, cols, eps});
    enc.launch(exec);
    enc.commit_and_wait();
    std::vector<float> x2(xv.size());
    for (std::size_t i = 0; i < xv.size(); ++i) x2[i] = 2.0f * xv[i];
    EXPECT_LE(test::rel_l2(out.to_vector<float>(), rms_norm_ref(x2, wv, rows, cols, eps)), 1e-5)
        << "eps=" << eps;
  }
  MLXN_EXPECT_ERROR(exec.set_params(1, ops::RmsNormParams{rows, cols, 1.f}),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(exec.set_params(2, ops::BinaryParams{1}), ErrorKind::InvalidArgument);
}

TEST_P(GraphTest, GraphSessionFinishIsOneCommandBufferAndOneSync) {
  GraphExecutor executor(device());
  counters::reset();
  GraphSession s = executor.begin();
  encode_diamond(s.encoder(), false);
  s.finish();
  const CounterSnapshot c = counters::read();
  EXPECT_EQ(c.command_buffers, 1u);
  EXPECT_EQ(c.syncs, 1u);
  EXPECT_EQ(c.dispatches, 4u);
  EXPECT_EQ(c.auto_barriers, 2u) << "t3 needs t1 and t2; t4 needs t3";
  expect_diamond_results();

  poison_temps();  // the session can encode a second pass
  encode_diamond(s.encoder(), false);
  s.finish();
  expect_diamond_results();
}

MLXN_INSTANTIATE_BACKENDS(GraphTest);

}  // namespace
}  // namespace mlxn
