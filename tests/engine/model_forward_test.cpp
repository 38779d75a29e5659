// Forward-pass tests on tiny random models of every family, written to disk and loaded with
// Model::load: chunked prefill + decode through the (ring) KV cache against one-shot scoring,
// an independent float64 reference, greedy generation, CUDA against CPU, and load/forward errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/forward_reference.h"
#include "engine/forward_test_util.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/kv_cache.h"
#include "mlxn/engine/model.h"
#include "test_backends.h"

namespace mlxn::test::forward {
namespace {

using engine::Model;
using engine::ModelOptions;

constexpr std::size_t kSeqLen = 30;

ModelOptions cpu_options(std::int64_t prefill_chunk) {
  ModelOptions o;
  o.backend = Backend::Cpu;
  o.context = 64;
  o.prefill_chunk = prefill_chunk;
  return o;
}

class FamilyTest : public ::testing::TestWithParam<TinyFamily> {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(GetParam().name);
    seed_ = test_seed();
    write_tiny_model(dir_->path(), GetParam().config, seed_);
    std::mt19937 rng(seed_ + 1);
    tokens_ = random_tokens(rng, kSeqLen, GetParam().config["vocab_size"].get<std::int64_t>());
  }
  const std::filesystem::path& path() const { return dir_->path(); }

  std::unique_ptr<TempDir> dir_;
  std::uint32_t seed_ = 0;
  std::vector<std::int32_t> tokens_;
};

std::string family_name(const ::testing::TestParamInfo<TinyFamily>& info) {
  return info.param.name;
}

// (a) One-shot scoring equals chunked prefill (chunks of 7, through ring buffers smaller than the
// sequence) followed by one-token decode steps, row by row.
TEST_P(FamilyTest, ChunkedPrefillAndDecodeMatchScore) {
  Model whole = Model::load(path(), cpu_options(64));
  const std::vector<float> ref = whole.score(tokens_);
  const auto vocab = static_cast<std::size_t>(whole.config().vocab_size);
  ASSERT_EQ(ref.size(), kSeqLen * vocab);
  ASSERT_EQ(whole.cache().length(), static_cast<std::int64_t>(kSeqLen));

  Model chunked = Model::load(path(), cpu_options(7));
  std::vector<std::vector<float>> rows;
  const auto take_rows = [&](const std::vector<float>& logits) {
    for (std::size_t r = 0; r < logits.size() / vocab; ++r)
      rows.push_back(row_of(logits, vocab, r));
  };
  const std::span<const std::int32_t> all(tokens_);
  take_rows(chunked.forward(all.subspan(0, 14), true));   // two chunks of 7
  take_rows(chunked.forward(all.subspan(14, 10), true));  // a chunk of 7 and one of 3
  for (std::size_t t = 24; t < kSeqLen; ++t) take_rows(chunked.forward(all.subspan(t, 1)));
  ASSERT_EQ(rows.size(), kSeqLen);
  EXPECT_EQ(chunked.cache().length(), static_cast<std::int64_t>(kSeqLen));
  for (std::size_t r = 0; r < kSeqLen; ++r) {
    EXPECT_LE(rel_l2(rows[r], row_of(ref, vocab, r)), 1e-5) << "position " << r;
  }

  // Scoring with the chunked model (every chunk through the ring) gives the same logits.
  EXPECT_LE(rel_l2(chunked.score(tokens_), ref), 1e-5);
  // forward() without all_logits returns the last row only.
  chunked.reset();
  const std::vector<float> last = chunked.forward(all);
  EXPECT_LE(rel_l2(last, row_of(ref, vocab, kSeqLen - 1)), 1e-5);
}

// (e) Pipelined decode steps (queue_sample / take_sample) pick what synchronous
// forward_and_sample steps pick, draw for draw; dropping queued steps cuts the cache back to the
// last taken token, from which decoding goes on as if they had never run; misuse is refused.
TEST_P(FamilyTest, PipelinedStepsMatchSynchronousSteps) {
  const std::span<const std::int32_t> prompt(tokens_.data(), 9);
  engine::SampleStep step;
  step.temperature = 0.8f;
  step.top_k = 40;
  const auto draw = [&step](int i) {
    step.u = static_cast<float>(i % 10) / 10.0f + 0.05f;
    return step;
  };
  Model sync = Model::load(path(), cpu_options(64));
  std::vector<std::int32_t> want{sync.forward_and_sample(prompt, draw(0))};
  for (int i = 1; i < 8; ++i) want.push_back(sync.forward_and_sample({&want.back(), 1}, draw(i)));

  Model piped = Model::load(path(), cpu_options(64));
  EXPECT_THROW(piped.queue_sample(draw(0)), Error) << "nothing picked on the device yet";
  std::vector<std::int32_t> got{piped.forward_and_sample(prompt, draw(0))};
  piped.queue_sample(draw(1));
  for (int i = 2; i < 8; ++i) {
    piped.queue_sample(draw(i));
    EXPECT_THROW(piped.queue_sample(draw(i + 1)), Error) << "a third step in flight";
    got.push_back(piped.take_sample());
  }
  got.push_back(piped.take_sample());
  EXPECT_EQ(got, want);
  EXPECT_EQ(piped.queued(), 0);
  EXPECT_EQ(piped.cache().length(), static_cast<std::int64_t>(prompt.size()) + 7);

  // Two steps queued past the end, then dropped: the cache is back at the last taken token.
  piped.queue_sample(draw(8));
  piped.queue_sample(draw(9));
  EXPECT_EQ(piped.cache().length(), static_cast<std::int64_t>(prompt.size()) + 9);
  piped.drop_queued();
  EXPECT_EQ(piped.queued(), 0);
  EXPECT_EQ(piped.cache().length(), static_cast<std::int64_t>(prompt.size()) + 7);
  EXPECT_THROW(piped.take_sample(), Error);
  const std::int32_t next = piped.forward_and_sample({&got.back(), 1}, draw(8));
  EXPECT_EQ(next, sync.forward_and_sample({&want.back(), 1}, draw(8)));

  // Penalties need host-side tokens: refused.
  engine::SampleStep penalized = draw(9);
  const std::vector<std::int32_t> pairs{got[0], 1};
  penalized.repetition_penalty = 1.3f;
  penalized.penalty_counts = pairs;
  EXPECT_THROW(piped.queue_sample(penalized), Error);
}

// Greedy steps (which upload no settings) between sampled steps, pipelined: each sampled step
// still reads its own settings from its slot, so the picks are the synchronous steps' picks.
TEST_P(FamilyTest, PipelinedGreedyStepsBetweenSampledStepsKeepEachStepsSettings) {
  const std::span<const std::int32_t> prompt(tokens_.data(), 9);
  const auto step_at = [](int i) {
    engine::SampleStep s;
    if (i % 3 != 1) {  // steps 1, 4, 7 are greedy
      s.temperature = 0.5f + 0.25f * static_cast<float>(i % 4);
      s.top_k = 10 + 5 * i;
      s.u = static_cast<float>((7 * i) % 10) / 10.0f + 0.05f;
    }
    return s;
  };
  Model sync = Model::load(path(), cpu_options(64));
  std::vector<std::int32_t> want{sync.forward_and_sample(prompt, step_at(0))};
  for (int i = 1; i < 9; ++i) {
    want.push_back(sync.forward_and_sample({&want.back(), 1}, step_at(i)));
  }

  Model piped = Model::load(path(), cpu_options(64));
  std::vector<std::int32_t> got{piped.forward_and_sample(prompt, step_at(0))};
  piped.queue_sample(step_at(1));
  for (int i = 2; i < 9; ++i) {
    piped.queue_sample(step_at(i));
    got.push_back(piped.take_sample());
  }
  got.push_back(piped.take_sample());
  EXPECT_EQ(got, want);
}

// (c) Model::score against the float64 reference written from the transformers formulas.
TEST_P(FamilyTest, ScoreMatchesFloat64Reference) {
  Model model = Model::load(path(), cpu_options(64));
  const std::vector<float> got = model.score(tokens_);
  ReferenceModel ref(path());
  const std::vector<double> want = ref.logits(tokens_);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LE(rel_l2(got, want), 1e-4);
}

// (b) Greedy generation is deterministic and follows the argmax of the logits step by step.
TEST_P(FamilyTest, GreedyIsDeterministicAndFollowsArgmax) {
  Model model = Model::load(path(), cpu_options(7));
  const std::span<const std::int32_t> prompt(tokens_.data(), 9);
  const std::vector<std::int32_t> a = model.generate_greedy(prompt, 12);
  const std::vector<std::int32_t> b = model.generate_greedy(prompt, 12);
  ASSERT_EQ(a.size(), 12u);
  EXPECT_EQ(a, b);

  // The same continuation from host argmaxes of forward()'s logits.
  model.reset();
  std::vector<float> logits = model.forward(prompt);
  std::vector<std::int32_t> host;
  for (int i = 0; i < 12; ++i) {
    host.push_back(host_argmax(logits));
    if (i + 1 < 12) logits = model.forward(std::span<const std::int32_t>(&host.back(), 1));
  }
  EXPECT_EQ(a, host);

  // A stop id ends generation right after it is produced.
  const std::vector<std::int32_t> stop{a[3]};
  const std::vector<std::int32_t> stopped = model.generate_greedy(prompt, 12, stop);
  const auto first = static_cast<std::size_t>(std::find(a.begin(), a.end(), a[3]) - a.begin());
  EXPECT_EQ(stopped, std::vector<std::int32_t>(a.begin(), a.begin() + first + 1));
}

// (d) CUDA (bf16 activations and cache, the default there) against the CPU in f32; greedy on
// CUDA in f32 against the CPU (bf16 rounding could flip near-ties of a random model).
TEST_P(FamilyTest, CudaMatchesCpu) {
  std::string reason;
  if (!open_cuda_or_reason(reason)) GTEST_SKIP() << "no CUDA device: " << reason;
  Model cpu = Model::load(path(), cpu_options(7));
  ModelOptions co = cpu_options(7);
  co.backend = Backend::Cuda;
  Model gpu = Model::load(path(), co);
  EXPECT_EQ(gpu.compute_dtype(), DType::BF16);
  // Routed experts: the random router of this tiny model has top-k near-ties that bf16 rounding
  // resolves differently from f32, and a token routed to another expert moves its own logits and,
  // through attention, the later positions'. Over 116 seeds on the H100 the dense families
  // reached 0.021 at one decode position, and qwen3_moe 0.081 over the whole sequence (its decode
  // positions: see the routing flips below), so the MoE bound only separates that from a broken
  // path (whose error is of order 1); the f32 checks below hold every family, MoE included, to
  // 1e-4 and to the CPU's greedy tokens.
  const bool moe = GetParam().config.contains("num_experts");
  const double bf16_bound = moe ? 0.15 : 3e-2;
  const std::vector<float> want = cpu.score(tokens_);
  EXPECT_LE(rel_l2(gpu.score(tokens_), want), bf16_bound);

  // Decode path on the GPU: chunked prefill, then single tokens. With routed experts a decode
  // position may be a routing flip: over 116 seeds on the H100 (identical with last session's
  // tree), 5 seeds had positions above 0.15 (0.22-0.55), at most 2 in one sequence. So MoE allows
  // up to kMaxFlips such positions, each still far below the ~1.4 of unrelated logits.
  constexpr int kMaxFlips = 3;
  gpu.reset();
  const std::span<const std::int32_t> all(tokens_);
  gpu.forward(all.subspan(0, 20));
  const auto vocab = static_cast<std::size_t>(cpu.config().vocab_size);
  int flips = 0;  // MoE decode positions above the bound so far
  for (std::size_t t = 20; t < kSeqLen; ++t) {
    const std::vector<float> got = gpu.forward(all.subspan(t, 1));
    const double err = rel_l2(got, row_of(want, vocab, t));
    if (moe && err > bf16_bound && flips < kMaxFlips) {
      ++flips;
      EXPECT_LT(err, 1.0) << "position " << t << ": more than a routing flip";
      std::printf(
          "[ parity   ] position %zu: rel-L2 %.3g over %.3g (routing flip %d of %d allowed)\n", t,
          err, bf16_bound, flips, kMaxFlips);
      continue;
    }
    EXPECT_LE(err, bf16_bound) << "position " << t;
  }

  co.compute_dtype = DType::F32;
  Model gpu32 = Model::load(path(), co);
  const std::span<const std::int32_t> prompt(tokens_.data(), 9);
  EXPECT_LE(rel_l2(gpu32.score(tokens_), want), 1e-4);
  EXPECT_EQ(gpu32.generate_greedy(prompt, 12), cpu.generate_greedy(prompt, 12));

  // Greedy decoding on CUDA is deterministic run after run, in bf16 as in f32.
  const std::vector<std::int32_t> first = gpu.generate_greedy(prompt, 16);
  EXPECT_EQ(gpu.generate_greedy(prompt, 16), first) << "bf16 greedy differs between runs";
  const std::vector<std::int32_t> first32 = gpu32.generate_greedy(prompt, 16);
  EXPECT_EQ(gpu32.generate_greedy(prompt, 16), first32) << "f32 greedy differs between runs";
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyTest, ::testing::ValuesIn(tiny_families()), family_name);

// LongRoPE switches from the short to the long factors once a forward call reaches past the
// original context (transformers recomputes the table from max(position_ids) + 1 per call).
TEST(ModelForwardRope, LongRopeSwitchesToLongFactorsPastTheOriginalLength) {
  Json c;
  for (const TinyFamily& f : tiny_families()) {
    if (f.name == "phi3_longrope") c = f.config;
  }
  c["original_max_position_embeddings"] = 16;
  c["max_position_embeddings"] = 64;
  TempDir dir("longrope_switch");
  const std::uint32_t seed = test_seed();
  write_tiny_model(dir.path(), c, seed);
  std::mt19937 rng(seed + 1);
  const std::vector<std::int32_t> tokens = random_tokens(rng, kSeqLen, 101);
  Model model = Model::load(dir.path(), cpu_options(8));
  ReferenceModel ref(dir.path());
  const std::span<const std::int32_t> all(tokens);
  for (std::size_t n : {std::size_t{12}, std::size_t{16}, kSeqLen}) {
    SCOPED_TRACE("tokens " + std::to_string(n));
    EXPECT_LE(rel_l2(model.score(all.subspan(0, n)), ref.logits(all.subspan(0, n))), 1e-4);
  }
  // The two tables differ enough for the comparison above to tell them apart.
  const std::vector<float> long_rows = model.score(all);
  const std::vector<double> short_ref = [&] {
    Json cs = c;
    cs["original_max_position_embeddings"] = 4096;  // never exceeded: short factors throughout
    TempDir dir2("longrope_short");
    write_tiny_model(dir2.path(), cs, seed);
    return ReferenceModel(dir2.path()).logits(all);
  }();
  EXPECT_GT(rel_l2(long_rows, short_ref), 1e-3);
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST(ModelForwardErrors, UnknownArchitectureListsSupportedFamilies) {
  TempDir dir("unknown");
  Json c = tiny_base("gpt_neox", "GPTNeoXForCausalLM");
  write_text(dir.path() / "config.json", c.dump());
  io::SafetensorsWriter w;
  const std::vector<float> one{1.0f};
  w.add("x", io::TensorDType::F32, {1}, one);
  w.write(dir.path() / "model.safetensors");
  auto err = capture_error([&] { Model::load(dir.path(), cpu_options(8)); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind(), ErrorKind::Unsupported);
  const std::string msg = err->what();
  EXPECT_NE(msg.find("gpt_neox"), std::string::npos) << msg;
  for (const char* family :
       {"llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "gemma2", "gemma3", "phi3"}) {
    EXPECT_NE(msg.find(family), std::string::npos) << family << " missing from: " << msg;
  }
}

TEST(ModelForwardErrors, KvCacheLargerThanMemoryFailsClearly) {
  Device device = Device::open(Backend::Cpu);
  const Json c = tiny_base("llama", "LlamaForCausalLM");
  const io::ModelConfig config = io::ModelConfig::from_json_string(c.dump(), "tiny");
  engine::KvCacheOptions o;
  o.context = std::int64_t{1} << 36;  // 3 layers x 2 x 64 x 4 bytes x 2^36 = 192 TiB
  auto err = capture_error([&] { engine::KvCache::create(device, config, o); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind(), ErrorKind::InvalidArgument);
  const std::string msg = err->what();
  EXPECT_NE(msg.find("free"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bytes"), std::string::npos) << msg;

  // Through Model::load: a config without max_position_embeddings does not clamp the context.
  TempDir dir("huge_cache");
  Json nc = c;
  nc.erase("max_position_embeddings");
  write_tiny_model(dir.path(), nc, 7);
  ModelOptions mo = cpu_options(8);
  mo.context = o.context;
  MLXN_EXPECT_ERROR(Model::load(dir.path(), mo), ErrorKind::InvalidArgument);
}

TEST(ModelForwardErrors, BadTokensAndContextOverflow) {
  TempDir dir("bad_tokens");
  write_tiny_model(dir.path(), tiny_base("llama", "LlamaForCausalLM"), 11);
  ModelOptions o = cpu_options(8);
  o.context = 16;
  Model model = Model::load(dir.path(), o);
  EXPECT_EQ(model.cache().layer(0).capacity, 16);
  const std::vector<std::int32_t> bad{1, 2, 101};
  MLXN_EXPECT_ERROR(model.forward(bad), ErrorKind::InvalidArgument);
  const std::vector<std::int32_t> negative{-1};
  MLXN_EXPECT_ERROR(model.forward(negative), ErrorKind::InvalidArgument);
  EXPECT_EQ(model.cache().length(), 0);  // nothing was appended
  const std::vector<std::int32_t> ten(10, 3);
  model.forward(ten);
  MLXN_EXPECT_ERROR(model.forward(ten), ErrorKind::InvalidArgument);
  EXPECT_EQ(model.cache().length(), 10);
  // Greedy generation stops when the cache is full.
  EXPECT_EQ(model.generate_greedy(ten, 100).size(), 16u - 10u + 1u);
}

}  // namespace
}  // namespace mlxn::test::forward
