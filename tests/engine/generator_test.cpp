// Generation loop tests on tiny random models written to disk: greedy equals
// Model::generate_greedy, seeded sampling is reproducible, top_k = 1 is greedy, a float64 host
// sampler picks the same tokens as the device path step by step, stop ids / stop strings / max
// tokens / full context / callbacks end generation as specified, text is held back and released
// around stop strings, statistics are filled, continuing from the cache equals starting over, and
// CUDA picks the same tokens as the CPU.
#include "mlxn/engine/generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "engine/forward_test_util.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/sampler.h"
#include "test_backends.h"

namespace mlxn::test::forward {
namespace {

using engine::GenerationResult;
using engine::Generator;
using engine::Model;
using engine::ModelOptions;
using engine::SamplingParams;
using engine::StopReason;

constexpr std::size_t kPromptLen = 9;
constexpr std::int64_t kVocab = 101;

ModelOptions options(Backend backend = Backend::Cpu, std::int64_t context = 64) {
  ModelOptions o;
  o.backend = backend;
  o.context = context;
  o.prefill_chunk = 7;  // the 9-token prompt is prefilled in two chunks
  return o;
}

// A sampling setup that exercises every warper and penalty at once.
SamplingParams full_params(std::uint64_t seed) {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 40;
  p.top_p = 0.9f;
  p.min_p = 0.02f;
  p.repetition_penalty = 1.3f;
  p.presence_penalty = 0.2f;
  p.frequency_penalty = 0.1f;
  p.penalty_last_n = 6;
  p.seed = seed;
  p.max_tokens = 16;
  return p;
}

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>("generator");
    seed_ = test_seed();
    write_tiny_model(dir_->path(), tiny_base("llama", "LlamaForCausalLM"), seed_);
    std::mt19937 rng(seed_ + 1);
    prompt_ = random_tokens(rng, kPromptLen, kVocab);
  }
  Model load(Backend backend = Backend::Cpu, std::int64_t context = 64) {
    return Model::load(dir_->path(), options(backend, context));
  }

  std::unique_ptr<TempDir> dir_;
  std::uint32_t seed_ = 0;
  std::vector<std::int32_t> prompt_;
};

// ---------------------------------------------------------------------------------------------
// The float64 reference of one step: penalties over the last penalty_last_n tokens of the
// history (prompt included), then the algorithm of include/mlxn/ops/sampling.h. `margin` is how
// close (relative) a decision came to a boundary where f32 rounding could flip it.

struct RefPick {
  std::int32_t token;
  double margin;
};

RefPick reference_pick(const std::vector<float>& logits, const std::vector<std::int32_t>& history,
                       const SamplingParams& p, float u) {
  const auto vocab = static_cast<std::int64_t>(logits.size());
  std::vector<double> x(logits.begin(), logits.end());
  if (p.penalty_last_n != 0) {
    const std::size_t n = p.penalty_last_n < 0
                              ? history.size()
                              : std::min(history.size(), std::size_t(p.penalty_last_n));
    std::map<std::int32_t, int> counts;
    for (std::size_t i = history.size() - n; i < history.size(); ++i) ++counts[history[i]];
    for (const auto& [id, c] : counts) {
      double& v = x[static_cast<std::size_t>(id)];
      v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
      v -= c * double(p.frequency_penalty) + double(p.presence_penalty);
    }
  }
  std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    return x[static_cast<std::size_t>(a)] > x[static_cast<std::size_t>(b)];
  });
  const auto xr = [&](std::int64_t rank) { return x[static_cast<std::size_t>(order[rank])]; };
  // Ranks whose order f32 rounding might swap.
  const auto rank_gap = [&](std::int64_t r) {
    double g = 1.0;
    if (r > 0) g = std::min(g, std::abs(xr(r - 1) - xr(r)) / (1.0 + std::abs(xr(r))));
    if (r + 1 < vocab) g = std::min(g, std::abs(xr(r) - xr(r + 1)) / (1.0 + std::abs(xr(r))));
    return g;
  };
  if (p.temperature <= 0.0f) return {order[0], rank_gap(0)};

  std::vector<double> w(static_cast<std::size_t>(vocab)), cum(static_cast<std::size_t>(vocab) + 1);
  for (std::int64_t j = 0; j < vocab; ++j) {
    w[j] = std::exp((xr(j) - xr(0)) / p.temperature);
    cum[j + 1] = cum[j] + w[j];
  }
  double margin = 1.0;
  std::int64_t n = (p.top_k > 0 && p.top_k < vocab) ? p.top_k : vocab;
  if (n < vocab) margin = std::min(margin, rank_gap(n - 1));
  if (p.top_p < 1.0f) {
    const double t = double(p.top_p) * cum[n];
    std::int64_t m = 1;
    while (m < n && cum[m] < t) ++m;
    margin = std::min({margin, std::abs(cum[m] - t) / cum[n], std::abs(cum[m - 1] - t) / cum[n]});
    n = m;
  }
  if (p.min_p > 0.0f) {
    const double thr = p.min_p;
    std::int64_t m = 0;
    while (m < n && w[m] >= thr) ++m;
    if (m < n) margin = std::min(margin, std::abs(w[m] - thr) / thr);
    if (m > 0) margin = std::min(margin, std::abs(w[m - 1] - thr) / thr);
    n = std::max<std::int64_t>(m, 1);
  }
  const double t = double(u) * cum[n];
  std::int64_t r = 0;
  while (r < n - 1 && cum[r + 1] <= t) ++r;
  margin = std::min(
      {margin, std::abs(t - cum[r]) / cum[n], std::abs(cum[r + 1] - t) / cum[n], rank_gap(r)});
  return {order[r], margin};
}

// ---------------------------------------------------------------------------------------------
// Greedy.

class GeneratorFamilyTest : public ::testing::TestWithParam<TinyFamily> {};

TEST_P(GeneratorFamilyTest, TemperatureZeroEqualsGenerateGreedy) {
  TempDir dir(GetParam().name);
  const std::uint32_t seed = test_seed();
  write_tiny_model(dir.path(), GetParam().config, seed);
  std::mt19937 rng(seed + 1);
  const auto prompt = random_tokens(rng, kPromptLen, kVocab);
  Model model = Model::load(dir.path(), options());
  const std::vector<std::int32_t> want = model.generate_greedy(prompt, 14);
  SamplingParams p;
  p.max_tokens = 14;
  Generator gen(model);
  const GenerationResult got = gen.generate(prompt, p);
  EXPECT_EQ(got.tokens, want);
  EXPECT_EQ(got.stop_reason, StopReason::MaxTokens);
  // Top-p / min-p / seed change nothing at temperature 0.
  p.top_p = 0.5f;
  p.min_p = 0.3f;
  p.seed = 12345;
  EXPECT_EQ(gen.generate(prompt, p).tokens, want);
}

INSTANTIATE_TEST_SUITE_P(Families, GeneratorFamilyTest, ::testing::ValuesIn(tiny_families()),
                         [](const ::testing::TestParamInfo<TinyFamily>& info) {
                           return info.param.name;
                         });

TEST_F(GeneratorTest, TopK1IsGreedyAtAnyTemperature) {
  Model model = load();
  const std::vector<std::int32_t> want = model.generate_greedy(prompt_, 12);
  Generator gen(model);
  for (float t : {0.3f, 1.0f, 5.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = 1;
    p.max_tokens = 12;
    p.seed = static_cast<std::uint64_t>(t * 1000);
    EXPECT_EQ(gen.generate(prompt_, p).tokens, want) << "temperature " << t;
  }
}

// Feeding a token other than the one just picked must upload it (the picked one is already on
// the device and is reused only when it is fed back).
TEST_F(GeneratorTest, ForwardAndSampleFollowsTheTokensItIsGiven) {
  Model model = load();
  engine::SampleStep greedy;
  std::vector<float> logits = model.forward(prompt_);
  model.reset();
  std::int32_t picked = model.forward_and_sample(prompt_, greedy);
  EXPECT_EQ(picked, host_argmax(logits));
  for (int i = 0; i < 6; ++i) {
    const std::int32_t feed = i % 2 == 0 ? (picked + 1 + i) % kVocab : picked;
    const std::int64_t len = model.cache().length();
    picked = model.forward_and_sample(std::span<const std::int32_t>(&feed, 1), greedy);
    model.cache().set_length(len);
    logits = model.forward(std::span<const std::int32_t>(&feed, 1));
    EXPECT_EQ(picked, host_argmax(logits)) << "step " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling.

TEST_F(GeneratorTest, SameSeedSameTokensDifferentSeedsDiffer) {
  Model model = load();
  Generator gen(model);
  SamplingParams p = full_params(42);
  p.temperature = 2.0f;  // flat enough that seeds must matter
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.max_tokens = 24;
  const std::vector<std::int32_t> a = gen.generate(prompt_, p).tokens;
  ASSERT_EQ(a.size(), 24u);
  EXPECT_EQ(gen.generate(prompt_, p).tokens, a);
  // A fresh model (another device state) gives the same tokens too.
  Model other = load();
  EXPECT_EQ(Generator(other).generate(prompt_, p).tokens, a);
  for (std::uint64_t s : {43ull, 1ull, 0xdeadbeefull}) {
    p.seed = s;
    EXPECT_NE(gen.generate(prompt_, p).tokens, a) << "seed " << s;
  }
}

// Pipelined sampled decoding (no penalties) draws the same uniform for each token as waiting
// for every step does, so both pick the same tokens; the first queued step is token 1.
TEST_F(GeneratorTest, PipelinedSamplingEqualsSynchronousSampling) {
  Model model = load();
  Generator gen(model);
  SamplingParams p = full_params(7);
  p.repetition_penalty = 1.0f;  // no penalties: the pipelined path
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.0f;
  p.temperature = 2.0f;  // flat enough that a wrong draw changes tokens
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.max_tokens = 24;
  engine::GenerateOptions sync_options;
  sync_options.pipelined = false;
  const std::vector<std::int32_t> want = gen.generate(prompt_, p, {}, {}, {}, sync_options).tokens;
  ASSERT_EQ(want.size(), 24u);
  EXPECT_EQ(gen.generate(prompt_, p).tokens, want);
  for (std::int64_t max_tokens : {1, 2, 3}) {
    p.max_tokens = max_tokens;
    const std::vector<std::int32_t> got = gen.generate(prompt_, p).tokens;
    EXPECT_EQ(got, std::vector<std::int32_t>(want.begin(), want.begin() + max_tokens))
        << "max_tokens " << max_tokens;
  }
}

// The device path (penalties op + ops::sample, one id read back) picks, step after step, the
// token a float64 host implementation picks from Model::forward's logits with the same uniform.
TEST_F(GeneratorTest, MatchesFloat64HostSamplerStepByStep) {
  Model model = load();
  Generator gen(model);
  std::mt19937 rng(seed_ + 2);
  std::vector<SamplingParams> cases;
  cases.push_back(full_params(rng()));
  SamplingParams all_history = full_params(rng());
  all_history.penalty_last_n = -1;
  all_history.top_k = 0;
  all_history.repetition_penalty = 0.85f;  // boosts seen tokens
  cases.push_back(all_history);
  SamplingParams min_p_only = full_params(rng());
  min_p_only.top_k = 0;
  min_p_only.top_p = 1.0f;
  min_p_only.min_p = 0.1f;
  min_p_only.temperature = 1.5f;
  cases.push_back(min_p_only);
  SamplingParams greedy_penalized = full_params(rng());
  greedy_penalized.temperature = 0.0f;
  greedy_penalized.presence_penalty = 1.5f;
  cases.push_back(greedy_penalized);

  for (std::size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE("case " + std::to_string(c));
    const SamplingParams& p = cases[c];
    const std::vector<std::int32_t> got = gen.generate(prompt_, p).tokens;
    ASSERT_EQ(got.size(), static_cast<std::size_t>(p.max_tokens));
    model.reset();
    std::vector<std::int32_t> history = prompt_;
    std::vector<float> logits = model.forward(prompt_);
    std::size_t compared = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const RefPick want = reference_pick(logits, history, p, engine::sample_uniform(p.seed, i));
      // A decision within f32 rounding of a boundary may go either way; the host follows the
      // device's tokens, so the steps after it are still compared.
      if (want.margin >= 1e-6) {
        EXPECT_EQ(got[i], want.token) << "step " << i;
        ++compared;
      }
      history.push_back(got[i]);
      logits = model.forward(std::span<const std::int32_t>(&got[i], 1));
    }
    EXPECT_GE(compared, got.size() - 4);
  }
}

TEST_F(GeneratorTest, LargePresencePenaltyNeverRepeatsATokenInTheWindow) {
  Model model = load(Backend::Cpu, 128);
  SamplingParams p;
  p.presence_penalty = 1000.0f;
  p.penalty_last_n = -1;
  p.max_tokens = 60;  // 9 + 60 of 101 ids: without the penalty some id repeats almost surely
  const auto repeated = [&](const std::vector<std::int32_t>& generated) {
    std::vector<std::int32_t> seen = prompt_;
    for (std::int32_t t : generated) {
      if (std::find(seen.begin(), seen.end(), t) != seen.end()) return true;
      seen.push_back(t);
    }
    return false;
  };
  const std::vector<std::int32_t> got = Generator(model).generate(prompt_, p).tokens;
  ASSERT_EQ(got.size(), 60u);
  EXPECT_FALSE(repeated(got));
  p.presence_penalty = 0.0f;
  EXPECT_TRUE(repeated(Generator(model).generate(prompt_, p).tokens));
  // A window of 4 only keeps the last 4 tokens out: some id comes back within 60 tokens.
  p.presence_penalty = 1000.0f;
  p.penalty_last_n = 4;
  const std::vector<std::int32_t> windowed = Generator(model).generate(prompt_, p).tokens;
  for (std::size_t i = 0; i < windowed.size(); ++i) {
    for (std::size_t j = i >= 4 ? i - 4 : 0; j < i; ++j) {
      EXPECT_NE(windowed[i], windowed[j]) << "tokens " << j << " and " << i;
    }
  }
  EXPECT_TRUE(repeated(windowed));
}

// ---------------------------------------------------------------------------------------------
// Stop conditions.

TEST_F(GeneratorTest, MaxTokensContextFullAndCallback) {
  Model model = load(Backend::Cpu, 24);
  Generator gen(model);
  SamplingParams p = full_params(7);
  p.max_tokens = 5;
  GenerationResult r = gen.generate(prompt_, p);
  EXPECT_EQ(r.tokens.size(), 5u);
  EXPECT_EQ(r.stop_reason, StopReason::MaxTokens);

  p.max_tokens = 0;
  r = gen.generate(prompt_, p);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.stop_reason, StopReason::MaxTokens);

  // No limit: the cache fills (24 positions, 9 for the prompt, the last token is never fed).
  p.max_tokens = -1;
  r = gen.generate(prompt_, p);
  EXPECT_EQ(r.tokens.size(), 24u - kPromptLen + 1u);
  EXPECT_EQ(r.stop_reason, StopReason::ContextFull);

  int calls = 0;
  std::vector<std::int32_t> seen;
  r = gen.generate(prompt_, p, [&](std::int32_t t) {
    seen.push_back(t);
    return ++calls < 3;
  });
  EXPECT_EQ(r.tokens.size(), 3u);
  EXPECT_EQ(seen, r.tokens);
  EXPECT_EQ(r.stop_reason, StopReason::Callback);
}

TEST_F(GeneratorTest, StopIdEndsGenerationAndIsNotDetokenized) {
  Model model = load();
  Generator gen(model);
  SamplingParams p;
  p.max_tokens = 12;
  const std::vector<std::int32_t> a = gen.generate(prompt_, p).tokens;
  ASSERT_EQ(a.size(), 12u);
  p.stop_ids = {a[4], kVocab + 5};
  std::vector<std::int32_t> detokenized;
  const GenerationResult r = gen.generate(prompt_, p, {}, [&](std::int32_t t) {
    detokenized.push_back(t);
    return std::string("x");
  });
  const auto end = std::find(a.begin(), a.end(), a[4]) + 1;
  EXPECT_EQ(r.tokens, std::vector<std::int32_t>(a.begin(), end));
  EXPECT_EQ(r.stop_reason, StopReason::Eos);
  EXPECT_EQ(detokenized, std::vector<std::int32_t>(a.begin(), end - 1));
  EXPECT_EQ(r.text, std::string(detokenized.size(), 'x'));
}

// A fake detokenizer: every id is two letters of "abcdefg" (so pieces overlap in many ways).
std::string piece(std::int32_t id) {
  const char* letters = "abcdefg";
  return {letters[id % 7], letters[(id / 7) % 7]};
}

struct Streamed {
  GenerationResult result;
  std::string streamed;                 // on_text pieces concatenated
  std::vector<std::size_t> emitted_at;  // streamed.size() when token i arrived (before its text)
};

Streamed run_streamed(Generator& gen, std::span<const std::int32_t> prompt,
                      const SamplingParams& p) {
  Streamed s;
  s.result = gen.generate(
      prompt, p,
      [&](std::int32_t) {
        s.emitted_at.push_back(s.streamed.size());
        return true;
      },
      piece, [&](std::string_view text) { s.streamed += text; });
  return s;
}

TEST_F(GeneratorTest, StopStringsAreMatchedAcrossTokensAndNeverEmitted) {
  Model model = load();
  Generator gen(model);
  SamplingParams p;
  p.max_tokens = 14;
  const std::vector<std::int32_t> a = gen.generate(prompt_, p).tokens;
  ASSERT_EQ(a.size(), 14u);
  std::string full;
  std::vector<std::size_t> ends;  // ends[i]: text length through token i
  for (std::int32_t t : a) {
    full += piece(t);
    ends.push_back(full.size());
  }

  // A stop string spanning tokens 4 and 5: the second letter of one piece, the first of the next.
  const std::string stop = full.substr(ends[3] + 1, 2);
  p.stop_strings = {"zzz", stop};
  const Streamed s = run_streamed(gen, prompt_, p);
  const std::size_t at = full.find(stop);  // the first occurrence ends generation
  ASSERT_LE(at, ends[3] + 1);
  const std::size_t last = static_cast<std::size_t>(
      std::lower_bound(ends.begin(), ends.end(), at + stop.size()) - ends.begin());
  EXPECT_EQ(s.result.stop_reason, StopReason::StopString);
  EXPECT_EQ(s.result.tokens, std::vector<std::int32_t>(a.begin(), a.begin() + last + 1));
  EXPECT_EQ(s.result.text, full.substr(0, at));
  EXPECT_EQ(s.streamed, s.result.text);
}

TEST_F(GeneratorTest, TextThatMayStartAStopStringIsHeldBackThenReleased) {
  Model model = load();
  Generator gen(model);
  SamplingParams p;
  p.max_tokens = 10;
  const std::vector<std::int32_t> a = gen.generate(prompt_, p).tokens;
  ASSERT_EQ(a.size(), 10u);
  std::string full;
  std::vector<std::size_t> ends;
  for (std::int32_t t : a) {
    full += piece(t);
    ends.push_back(full.size());
  }
  // "#" never occurs, so these never match: token 2's text is held back until later text rules
  // the stop string out, and the last token's text is held back until generation ends.
  const std::string mid = piece(a[2]) + "#";
  const std::string tail = piece(a[9]) + "#";
  p.stop_strings = {mid, tail};
  const Streamed s = run_streamed(gen, prompt_, p);
  EXPECT_EQ(s.result.stop_reason, StopReason::MaxTokens);
  EXPECT_EQ(s.result.tokens, a);
  EXPECT_EQ(s.result.text, full);
  EXPECT_EQ(s.streamed, full);
  ASSERT_EQ(s.emitted_at.size(), a.size());
  // emitted_at[i + 1] is what was out after token i: never more than its text, and at most one
  // character short of a complete stop string held back.
  for (std::size_t i = 0; i + 1 < a.size(); ++i) {
    EXPECT_LE(s.emitted_at[i + 1], ends[i]) << "token " << i;
    EXPECT_GE(s.emitted_at[i + 1] + 2, ends[i]) << "token " << i;
  }
  EXPECT_LE(s.emitted_at[3], ends[2] - 2) << "token 2's text is a stop-string prefix";
  EXPECT_LE(s.emitted_at[9], ends[8]);
  // Without stop strings nothing is held back.
  p.stop_strings.clear();
  const Streamed plain = run_streamed(gen, prompt_, p);
  for (std::size_t i = 0; i + 1 < a.size(); ++i) EXPECT_EQ(plain.emitted_at[i + 1], ends[i]);
  EXPECT_EQ(plain.result.text, full);
}

TEST_F(GeneratorTest, RejectsBadRequests) {
  Model model = load();
  Generator gen(model);
  SamplingParams p;
  p.stop_strings = {"x"};
  MLXN_EXPECT_ERROR(gen.generate(prompt_, p), ErrorKind::InvalidArgument);  // no detokenizer
  p.stop_strings = {""};
  MLXN_EXPECT_ERROR(gen.generate(prompt_, p, {}, piece), ErrorKind::InvalidArgument);
  const auto bad = [&](auto mutate) {
    SamplingParams q;
    mutate(q);
    MLXN_EXPECT_ERROR(gen.generate(prompt_, q), ErrorKind::InvalidArgument);
  };
  bad([](SamplingParams& q) { q.temperature = -0.5f; });
  bad([](SamplingParams& q) { q.temperature = NAN; });
  bad([](SamplingParams& q) { q.top_k = -1; });
  bad([](SamplingParams& q) { q.top_p = 0.0f; });
  bad([](SamplingParams& q) { q.top_p = 1.5f; });
  bad([](SamplingParams& q) { q.min_p = -0.1f; });
  bad([](SamplingParams& q) { q.repetition_penalty = 0.0f; });
  bad([](SamplingParams& q) { q.frequency_penalty = INFINITY; });
  bad([](SamplingParams& q) { q.max_tokens = -2; });
  bad([](SamplingParams& q) { q.penalty_last_n = -3; });
  MLXN_EXPECT_ERROR(gen.generate({}, SamplingParams{}), ErrorKind::InvalidArgument);
  const std::vector<std::int32_t> out_of_vocab{1, 2, kVocab};
  MLXN_EXPECT_ERROR(gen.generate(out_of_vocab, SamplingParams{}), ErrorKind::InvalidArgument);
  const std::vector<std::int32_t> too_long(65, 3);
  MLXN_EXPECT_ERROR(gen.generate(too_long, SamplingParams{}), ErrorKind::InvalidArgument);
}

TEST_F(GeneratorTest, StatisticsAreFilled) {
  Model model = load();
  SamplingParams p = full_params(3);
  p.max_tokens = 8;
  const GenerationResult r = Generator(model).generate(prompt_, p);
  ASSERT_EQ(r.tokens.size(), 8u);
  EXPECT_EQ(r.prompt_tokens, static_cast<std::int64_t>(kPromptLen));
  EXPECT_GT(r.prefill_seconds, 0.0);
  EXPECT_GE(r.time_to_first_token_seconds, r.prefill_seconds);
  EXPECT_GT(r.decode_seconds, 0.0);
  EXPECT_NEAR(r.prefill_tokens_per_second * r.prefill_seconds, double(kPromptLen), 1e-6);
  EXPECT_NEAR(r.decode_tokens_per_second * r.decode_seconds, 7.0, 1e-6);
  EXPECT_EQ(engine::stop_reason_name(r.stop_reason), "max_tokens");
}

// ---------------------------------------------------------------------------------------------
// Continuing from the cache.

// A request that keeps the cached prefix picks what a fresh request over the whole prompt picks:
// after a first request (cache = its prompt + all generated tokens but the last), and after
// cutting the cache back to part of it.
TEST_F(GeneratorTest, ContinuingFromTheCacheEqualsGeneratingFromScratch) {
  Model model = load();
  Model fresh_model = load();
  Generator gen(model);
  Generator fresh(fresh_model);
  SamplingParams p;
  p.max_tokens = 4;
  const std::span<const std::int32_t> head(prompt_.data(), 5);
  const GenerationResult first = gen.generate(head, p);
  ASSERT_EQ(first.tokens.size(), 4u);
  ASSERT_EQ(model.cache().length(), 5 + 3);

  // The cached head + 3 fed tokens, then the 4th generated token and the rest of prompt_.
  std::vector<std::int32_t> whole(head.begin(), head.end());
  whole.insert(whole.end(), first.tokens.begin(), first.tokens.end());
  whole.insert(whole.end(), prompt_.begin() + 5, prompt_.end());
  p.max_tokens = 10;
  engine::GenerateOptions opt;
  opt.cached = 5 + 3;
  const GenerationResult cont = gen.generate(whole, p, {}, {}, {}, opt);
  const GenerationResult want = fresh.generate(whole, p);
  ASSERT_EQ(want.tokens.size(), 10u);
  EXPECT_EQ(cont.tokens, want.tokens);
  EXPECT_EQ(cont.prompt_tokens, static_cast<std::int64_t>(whole.size()) - opt.cached);
  EXPECT_EQ(model.cache().length(), static_cast<std::int64_t>(whole.size()) + 9);

  // Cut back into the cached prompt: only the head stays, the rest of prompt_ follows it.
  opt.cached = 5;
  EXPECT_EQ(gen.generate(prompt_, p, {}, {}, {}, opt).tokens, fresh.generate(prompt_, p).tokens);

  // Seeded sampling with penalties: the whole prompt fills the penalty window and first_draw
  // offsets the random stream the same way in both.
  SamplingParams s = full_params(11);
  s.max_tokens = 8;
  opt.cached = 5;
  opt.first_draw = 3;
  ASSERT_GE(model.cache().length(), opt.cached);
  const GenerationResult sampled = gen.generate(prompt_, s, {}, {}, {}, opt);
  engine::GenerateOptions scratch;
  scratch.first_draw = 3;
  EXPECT_EQ(sampled.tokens, fresh.generate(prompt_, s, {}, {}, {}, scratch).tokens);
  // ... and differs from the stream that starts at draw 0 (8 tokens at temperature 0.9).
  EXPECT_NE(sampled.tokens, fresh.generate(prompt_, s).tokens);
}

TEST_F(GeneratorTest, ContinuingRejectsACachedPrefixItCannotUse) {
  Model model = load();
  Generator gen(model);
  SamplingParams p;
  p.max_tokens = 2;
  gen.generate(prompt_, p);  // the cache holds the prompt and one generated token
  engine::GenerateOptions opt;
  opt.cached = static_cast<std::int64_t>(prompt_.size());  // nothing left to feed
  MLXN_EXPECT_ERROR(gen.generate(prompt_, p, {}, {}, {}, opt), ErrorKind::InvalidArgument);
  opt.cached = -1;
  MLXN_EXPECT_ERROR(gen.generate(prompt_, p, {}, {}, {}, opt), ErrorKind::InvalidArgument);
  model.reset();
  opt.cached = 3;  // more than the (now empty) cache holds
  MLXN_EXPECT_ERROR(gen.generate(prompt_, p, {}, {}, {}, opt), ErrorKind::InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Sampler pieces.

TEST(SamplerTest, UniformIsCounterBasedAndUniform) {
  double sum = 0.0;
  int buckets[10] = {};
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) {
    const float u = engine::sample_uniform(99, static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    EXPECT_EQ(u, engine::sample_uniform(99, static_cast<std::uint64_t>(i)));
    sum += u;
    ++buckets[static_cast<int>(u * 10)];
  }
  EXPECT_NEAR(sum / kN, 0.5, 0.01);
  for (int b : buckets) EXPECT_NEAR(b, kN / 10, kN / 50);
  EXPECT_NE(engine::sample_uniform(0, 0), engine::sample_uniform(1, 0));
  EXPECT_NE(engine::sample_uniform(0, 0), engine::sample_uniform(0, 1));
}

TEST(SamplerTest, PenaltyWindowCountsTheLastNTokens) {
  std::mt19937 rng(test_seed());
  std::uniform_int_distribution<std::int32_t> tok(0, 12);
  for (std::int64_t n : {-1, 0, 1, 5, 64}) {
    SCOPED_TRACE("last_n " + std::to_string(n));
    engine::PenaltyWindow w(n);
    std::vector<std::int32_t> history;
    for (int i = 0; i < 200; ++i) {
      history.push_back(tok(rng));
      w.push(history.back());
      std::map<std::int32_t, int> want;
      const std::size_t k =
          n < 0 ? history.size() : std::min(history.size(), static_cast<std::size_t>(n));
      for (std::size_t j = history.size() - k; j < history.size(); ++j) ++want[history[j]];
      std::map<std::int32_t, int> got;
      const auto pairs = w.pairs();
      ASSERT_EQ(pairs.size() % 2, 0u);
      for (std::size_t j = 0; j < pairs.size(); j += 2) {
        ASSERT_TRUE(got.emplace(pairs[j], pairs[j + 1]).second) << "duplicate id " << pairs[j];
      }
      ASSERT_EQ(got, want) << "after " << i + 1 << " tokens";
    }
    w.clear();
    EXPECT_TRUE(w.pairs().empty());
  }
}

// ---------------------------------------------------------------------------------------------
// CUDA.

TEST_F(GeneratorTest, CudaPicksTheSameTokensAsCpu) {
  std::string reason;
  if (!open_cuda_or_reason(reason)) GTEST_SKIP() << "no CUDA device: " << reason;
  ModelOptions co = options(Backend::Cuda);
  co.compute_dtype = DType::F32;  // bf16 rounding could flip near-ties of a random model
  Model gpu = Model::load(dir_->path(), co);
  Model cpu = load();
  for (std::uint64_t seed : {1ull, 2ull, 3ull}) {
    SamplingParams p = full_params(seed);
    p.max_tokens = 20;
    EXPECT_EQ(Generator(gpu).generate(prompt_, p).tokens,
              Generator(cpu).generate(prompt_, p).tokens)
        << "seed " << seed;
  }
  SamplingParams greedy;
  greedy.max_tokens = 16;
  EXPECT_EQ(Generator(gpu).generate(prompt_, greedy).tokens, gpu.generate_greedy(prompt_, 16));
}

TEST_F(GeneratorTest, CudaBf16SamplingIsReproducible) {
  std::string reason;
  if (!open_cuda_or_reason(reason)) GTEST_SKIP() << "no CUDA device: " << reason;
  Model gpu = Model::load(dir_->path(), options(Backend::Cuda));
  EXPECT_EQ(gpu.compute_dtype(), DType::BF16);
  Generator gen(gpu);
  const SamplingParams p = full_params(77);
  const GenerationResult a = gen.generate(prompt_, p);
  EXPECT_EQ(a.tokens.size(), static_cast<std::size_t>(p.max_tokens));
  EXPECT_EQ(gen.generate(prompt_, p).tokens, a.tokens);
  EXPECT_GT(a.decode_tokens_per_second, 0.0);
}

}  // namespace
}  // namespace mlxn::test::forward
