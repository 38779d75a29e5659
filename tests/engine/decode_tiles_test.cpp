// engine/decode_tiles.h: which weights a model re-lays in the DecodeTiles order, and that the
// model computes the same with them. The pass is what Model::finish runs on CUDA with bf16; here
// it runs on the CPU, whose reference kernels read both orders to the same floats, so the
// logits must agree bit for bit. (The CUDA side: SyntheticModelCuda tests.)
#include "engine/decode_tiles.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "mlxn/core/error.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/synthetic_model.h"
#include "test_backends.h"

namespace mlxn::engine {
namespace {

bool tiled(const Linear& l) {
  return l.quant.layout == ops::QuantLayout::DecodeTiles;
}

std::vector<std::vector<float>> logits(const io::ModelConfig& c, const ModelWeights& w,
                                       Device& device) {
  ModelOptions o;
  o.backend = Backend::Cpu;
  o.context = 64;
  o.prefill_chunk = 16;
  Model m = Model::from_weights(c, w, device, o);
  std::vector<std::vector<float>> out;
  out.push_back(m.forward(std::vector<std::int32_t>{1, 17, 300, 42, 511, 7, 99, 256, 3, 4}));
  for (std::int32_t id : {5, 6}) out.push_back(m.forward(std::vector<std::int32_t>{id}));
  return out;
}

TEST(DecodeTiles, EveryEligibleWeightIsTiledAndTheModelComputesTheSame) {
  Device cpu = Device::open(Backend::Cpu);
  const io::ModelConfig c = synthetic_config("tiny");  // 2 layers, every shape a tile multiple
  const ModelWeights rows = make_synthetic_weights(c, SyntheticQuant::Mlx4, cpu, DType::F32, 3);
  ModelWeights t = rows;  // shares the buffers; tiling gives t new ones
  // Per layer the fused q/k/v, o, the fused gate/up and down; then the head.
  EXPECT_EQ(detail::tile_weights_for_decode(t, cpu), 2 * 4 + 1);
  for (const LayerWeights& l : t.layers) {
    for (const Linear* p : {&l.attn.qkv, &l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o,
                            &l.mlp->gate_up, &l.mlp->gate, &l.mlp->up, &l.mlp->down}) {
      EXPECT_TRUE(tiled(*p));
    }
    // The part views read whole tiles of the fused weight's new memory.
    EXPECT_TRUE(l.attn.k.quant.packed.same_storage(l.attn.qkv.quant.packed));
  }
  EXPECT_TRUE(tiled(t.lm_head));
  EXPECT_FALSE(tiled(rows.layers[0].attn.q));  // the source weights are untouched
  EXPECT_EQ(logits(c, t, cpu), logits(c, rows, cpu));
}

TEST(DecodeTiles, RowViewsOfTiledWeightsAreWholeTiles) {
  Device cpu = Device::open(Backend::Cpu);
  const io::ModelConfig c = synthetic_config("tiny");
  ModelWeights t = make_synthetic_weights(c, SyntheticQuant::Mlx4, cpu, DType::F32, 3);
  detail::tile_weights_for_decode(t, cpu);
  const Linear& qkv = t.layers[0].attn.qkv;
  EXPECT_TRUE(tiled(qkv.rows(16, 32)));
  MLXN_EXPECT_ERROR(qkv.rows(8, 16), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(qkv.rows(16, 24), ErrorKind::InvalidArgument);
}

// A head tied to a quantized embedding table is that table, read row by row by the lookup;
// dense and 8-bit weights have no tiled form.
TEST(DecodeTiles, TiedHeadsAndOtherStoragesKeepTheRowOrder) {
  Device cpu = Device::open(Backend::Cpu);
  const io::ModelConfig c = synthetic_config("tiny");
  ModelWeights t = make_synthetic_weights(c, SyntheticQuant::Mlx4, cpu, DType::F32, 3);
  const ops::QuantizedWeight& head = t.lm_head.quant;
  t.embedding.quant =
      ops::QuantizedEmbedding{head.packed, head.scales, head.biases, head.bits, head.group_size};
  EXPECT_EQ(detail::tile_weights_for_decode(t, cpu), 2 * 4);
  EXPECT_FALSE(tiled(t.lm_head));
  for (SyntheticQuant q : {SyntheticQuant::Mlx8, SyntheticQuant::Bf16}) {
    ModelWeights w = make_synthetic_weights(c, q, cpu, DType::F32, 3);
    EXPECT_EQ(detail::tile_weights_for_decode(w, cpu), 0);
  }
}

}  // namespace
}  // namespace mlxn::engine
