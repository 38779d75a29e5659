// tile_weights_for_decode (decode_tiles.h).
#include "decode_tiles.h"

#include <vector>

#include "mlxn/ops/quantized_matmul.h"

namespace mlxn::engine::detail {
namespace {

bool fits(const Linear& l) {
  return l.kind == WeightKind::MlxQuant && ops::decode_tiles_fit(l.quant);
}

// Queues the tiling of `l` into a new allocation and points `l` at it.
void tile(CommandEncoder& enc, Device& device, Linear& l) {
  Buffer packed = device.alloc(DType::U32, l.quant.packed.shape());
  l.quant = ops::tile_for_decode(enc, l.quant, packed);
}

// A fused projection and its row views: tiled together, or not at all.
void tile_fused(CommandEncoder& enc, Device& device, Linear& fused, std::vector<Linear*> parts,
                int& count) {
  if (!fused.valid()) {
    for (Linear* p : parts) {
      if (fits(*p)) {
        tile(enc, device, *p);
        ++count;
      }
    }
    return;
  }
  if (!fits(fused)) return;
  for (const Linear* p : parts) {
    if (p->out % ops::kDecodeTileRows != 0) return;
  }
  tile(enc, device, fused);
  ++count;
  std::int64_t row0 = 0;
  for (Linear* p : parts) {
    const std::int64_t rows = p->out;
    Linear view = fused.rows(row0, rows);
    view.bias = p->bias;
    *p = std::move(view);
    row0 += rows;
  }
}

}  // namespace

int tile_weights_for_decode(ModelWeights& w, Device& device) {
  int count = 0;
  for (LayerWeights& layer : w.layers) {
    CommandEncoder enc = device.command_encoder();
    AttentionWeights& at = layer.attn;
    tile_fused(enc, device, at.qkv, {&at.q, &at.k, &at.v}, count);
    if (fits(at.o)) {
      tile(enc, device, at.o);
      ++count;
    }
    if (layer.mlp) {
      MlpWeights& mlp = *layer.mlp;
      tile_fused(enc, device, mlp.gate_up, {&mlp.gate, &mlp.up}, count);
      if (fits(mlp.down)) {
        tile(enc, device, mlp.down);
        ++count;
      }
    }
    // The old row-order buffers stay referenced by the queued dispatches until this returns.
    enc.commit_and_wait();
  }
  const bool tied = w.embedding.quant && w.lm_head.quant.packed.valid() &&
                    w.lm_head.quant.packed.same_storage(w.embedding.quant->packed);
  if (!tied && fits(w.lm_head)) {
    CommandEncoder enc = device.command_encoder();
    tile(enc, device, w.lm_head);
    enc.commit_and_wait();
    ++count;
  }
  return count;
}

}  // namespace mlxn::engine::detail
