// tile_weights_for_decode (decode_tiles.h).
#include "decode_tiles.h"

#include <vector>

#include "mlxn/core/error.h"
#include "mlxn/ops/quantized_matmul.h"

namespace mlxn::engine::detail {
namespace {

bool fits(const Linear& l) {
  return l.kind == WeightKind::MlxQuant && ops::decode_tiles_fit(l.quant);
}

// Queues the tiling of `l` into a new allocation and points `l` at it. Where the device has no
// room for the copy (it holds the old order until the layer's tiling has run), `l` keeps MLX's
// row order, which every op also reads: tiling only ever makes decode faster, never loading
// fail.
bool tile(CommandEncoder& enc, Device& device, Linear& l) {
  if (!fits(l)) return false;
  Buffer packed;
  try {
    packed = device.alloc(DType::U32, l.quant.packed.shape());
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Allocation) return false;
    throw;
  }
  l.quant = ops::tile_for_decode(enc, l.quant, packed);
  return true;
}

// A fused projection and its row views: tiled together (the views then read whole tiles of the
// new memory), or not at all.
int tile_fused(CommandEncoder& enc, Device& device, Linear& fused, std::vector<Linear*> parts) {
  int count = 0;
  if (!fused.valid()) {
    for (Linear* p : parts) count += tile(enc, device, *p) ? 1 : 0;
    return count;
  }
  for (const Linear* p : parts) {
    if (p->out % ops::kDecodeTileRows != 0) return 0;
  }
  if (!tile(enc, device, fused)) return 0;
  std::int64_t row0 = 0;
  for (Linear* p : parts) {
    const std::int64_t rows = p->out;
    Linear view = fused.rows(row0, rows);
    view.bias = p->bias;
    *p = std::move(view);
    row0 += rows;
  }
  return 1;
}

}  // namespace

int tile_weights_for_decode(ModelWeights& w, Device& device) {
  int count = 0;
  for (LayerWeights& layer : w.layers) {
    CommandEncoder enc = device.command_encoder();
    AttentionWeights& at = layer.attn;
    count += tile_fused(enc, device, at.qkv, {&at.q, &at.k, &at.v});
    count += tile(enc, device, at.o) ? 1 : 0;
    if (layer.mlp) {
      MlpWeights& mlp = *layer.mlp;
      count += tile_fused(enc, device, mlp.gate_up, {&mlp.gate, &mlp.up});
      count += tile(enc, device, mlp.down) ? 1 : 0;
    }
    // The old row-order buffers stay referenced by the queued dispatches until this returns;
    // one layer at a time bounds the extra memory to one layer's weights.
    enc.commit_and_wait();
  }
  if (!head_tied_to_embedding(w)) {
    CommandEncoder enc = device.command_encoder();
    count += tile(enc, device, w.lm_head) ? 1 : 0;
    enc.commit_and_wait();
  }
  return count;
}

bool head_tied_to_embedding(const ModelWeights& w) {
  return w.embedding.quant && w.lm_head.quant.packed.valid() &&
         w.lm_head.quant.packed.same_storage(w.embedding.quant->packed);
}

}  // namespace mlxn::engine::detail
