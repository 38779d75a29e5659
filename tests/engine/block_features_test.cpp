// BlockFeatures per family (from the tiny test configs) and KvCache sizing: what each family
// switches on, the RoPE settings handed to the rope op, and the per-layer cache capacities.
#include "mlxn/engine/block_features.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "engine/forward_test_util.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/kv_cache.h"
#include "test_backends.h"

namespace mlxn::test::forward {
namespace {

using engine::BlockFeatures;
using engine::FfnActivation;

io::ModelConfig config_of(const std::string& family) {
  for (const TinyFamily& f : tiny_families()) {
    if (f.name == family) return io::ModelConfig::from_json_string(f.config.dump(), f.name);
  }
  ADD_FAILURE() << "no tiny family " << family;
  return {};
}

TEST(BlockFeatures, LlamaIsPlainPreNorm) {
  const BlockFeatures f = engine::block_features(config_of("llama"));
  EXPECT_FALSE(f.sandwich_norms);
  EXPECT_FALSE(f.qk_norm);
  EXPECT_FALSE(f.moe);
  EXPECT_EQ(f.activation, FfnActivation::Silu);
  EXPECT_EQ(f.embedding_scale, 1.0f);
  EXPECT_EQ(f.attn_scale, 0.0f);  // 1/sqrt(head_dim), chosen by the attention op
  EXPECT_EQ(f.attn_softcap, 0.0f);
  EXPECT_EQ(f.final_softcap, 0.0f);
  EXPECT_EQ(f.rope_layout, ops::RopeLayout::Neox);
  EXPECT_EQ(f.rope_global.scaling, ops::RopeScaling::Default);
  EXPECT_EQ(f.rope_global.theta, 10000.0);
  EXPECT_EQ(f.rope_global.rotary_dim, 64);
  EXPECT_EQ(f.rope_global.max_position_embeddings, 128);
}

TEST(BlockFeatures, LinearRopeScalingIsPassedOn) {
  const BlockFeatures f = engine::block_features(config_of("llama_tied_bias_linear_rope"));
  EXPECT_EQ(f.rope_global.scaling, ops::RopeScaling::Linear);
  EXPECT_EQ(f.rope_global.factor, 2.0);
  EXPECT_EQ(f.rope_local.scaling, ops::RopeScaling::Linear);
}

TEST(BlockFeatures, QwenFamilies) {
  const BlockFeatures q3 = engine::block_features(config_of("qwen3"));
  EXPECT_TRUE(q3.qk_norm);
  EXPECT_FALSE(q3.moe);
  const BlockFeatures moe = engine::block_features(config_of("qwen3_moe"));
  EXPECT_TRUE(moe.qk_norm);
  EXPECT_TRUE(moe.moe);
  EXPECT_EQ(moe.activation, FfnActivation::Silu);
  const BlockFeatures q2 = engine::block_features(config_of("qwen2"));
  EXPECT_FALSE(q2.qk_norm);
}

TEST(BlockFeatures, Gemma2SandwichScalesAndSoftcaps) {
  const BlockFeatures f = engine::block_features(config_of("gemma2"));
  EXPECT_TRUE(f.sandwich_norms);
  EXPECT_FALSE(f.qk_norm);
  EXPECT_EQ(f.activation, FfnActivation::GeluTanh);
  EXPECT_FLOAT_EQ(f.embedding_scale, 8.0f);                // sqrt(hidden_size = 64)
  EXPECT_FLOAT_EQ(f.attn_scale, 1.0f / std::sqrt(48.0f));  // query_pre_attn_scalar = 48
  EXPECT_FLOAT_EQ(f.attn_softcap, 2.0f);
  EXPECT_FLOAT_EQ(f.final_softcap, 3.0f);
}

TEST(BlockFeatures, Gemma3LocalAndGlobalRope) {
  const BlockFeatures f = engine::block_features(config_of("gemma3"));
  EXPECT_TRUE(f.sandwich_norms);
  EXPECT_TRUE(f.qk_norm);
  EXPECT_FLOAT_EQ(f.attn_scale, 1.0f / 8.0f);  // query_pre_attn_scalar = 64
  EXPECT_EQ(f.attn_softcap, 0.0f);
  EXPECT_EQ(f.final_softcap, 0.0f);
  EXPECT_EQ(f.rope_global.scaling, ops::RopeScaling::Linear);
  EXPECT_EQ(f.rope_global.factor, 4.0);
  EXPECT_EQ(f.rope_global.theta, 1e6);
  EXPECT_EQ(f.rope_local.scaling, ops::RopeScaling::Default);
  EXPECT_EQ(f.rope_local.theta, 1e4);
}

TEST(BlockFeatures, Phi3LongRopeAndPartialRotary) {
  const BlockFeatures f = engine::block_features(config_of("phi3_longrope"));
  EXPECT_FALSE(f.sandwich_norms);
  EXPECT_EQ(f.rope_global.scaling, ops::RopeScaling::LongRope);
  EXPECT_EQ(f.rope_global.rotary_dim, 32);  // head_dim 64 * partial_rotary_factor 0.5
  EXPECT_EQ(f.rope_global.max_position_embeddings, 8192);
  EXPECT_EQ(f.rope_global.original_max_position_embeddings, 4096);
  ASSERT_EQ(f.rope_global.short_factor.size(), 16u);
  ASSERT_EQ(f.rope_global.long_factor.size(), 16u);
  EXPECT_EQ(f.rope_global.short_factor[3], 1.75);
  EXPECT_EQ(f.rope_global.long_factor[3], 3.5);
}

TEST(BlockFeatures, UnknownArchitectureAndActivationAreUnsupported) {
  io::ModelConfig c = config_of("llama");
  c.arch = io::Architecture::Unknown;
  c.model_type = "mamba";
  auto err = capture_error([&] { engine::block_features(c); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind(), ErrorKind::Unsupported);
  EXPECT_NE(std::string(err->what()).find("mamba"), std::string::npos);
  EXPECT_NE(std::string(err->what()).find(io::supported_architectures()), std::string::npos);

  io::ModelConfig relu = config_of("llama");
  relu.hidden_act = "relu";
  auto err2 = capture_error([&] { engine::block_features(relu); });
  ASSERT_TRUE(err2);
  EXPECT_EQ(err2->kind(), ErrorKind::Unsupported);
  EXPECT_NE(std::string(err2->what()).find("relu"), std::string::npos);
}

TEST(KvCache, CapacitiesRingsAndBytes) {
  Device device = Device::open(Backend::Cpu);
  // qwen2 tiny: layer 0 full, layers 1 and 2 sliding with window 5; 1 KV head of 64 dims.
  const io::ModelConfig c = config_of("qwen2");
  engine::KvCacheOptions o;
  o.context = 100;
  o.max_chunk = 7;
  o.dtype = DType::BF16;
  const engine::KvCache cache = engine::KvCache::create(device, c, o);
  ASSERT_EQ(cache.n_layers(), 3);
  EXPECT_EQ(cache.layer(0).capacity, 100);
  EXPECT_FALSE(cache.layer(0).ring);
  for (int l : {1, 2}) {
    EXPECT_EQ(cache.layer(l).capacity, 5 + 7 - 1);
    EXPECT_TRUE(cache.layer(l).ring);
  }
  EXPECT_EQ(cache.layer(0).k.shape(), (Shape{1, 100, 64}));
  EXPECT_EQ(cache.layer(1).v.shape(), (Shape{1, 11, 64}));
  EXPECT_EQ(cache.layer(0).k.dtype(), DType::BF16);
  EXPECT_EQ(cache.bytes(), 2 * (100 + 11 + 11) * 64 * 2);
  EXPECT_EQ(cache.length(), 0);

  // A context smaller than window + chunk - 1 caps the ring too.
  o.context = 8;
  EXPECT_EQ(engine::KvCache::create(device, c, o).layer(1).capacity, 8);

  o.context = 0;
  MLXN_EXPECT_ERROR(engine::KvCache::create(device, c, o), ErrorKind::InvalidArgument);
  o.context = 16;
  o.max_chunk = 0;
  MLXN_EXPECT_ERROR(engine::KvCache::create(device, c, o), ErrorKind::InvalidArgument);
  o.max_chunk = 4;
  o.dtype = DType::I32;
  MLXN_EXPECT_ERROR(engine::KvCache::create(device, c, o), ErrorKind::UnsupportedDType);
}

}  // namespace
}  // namespace mlxn::test::forward
