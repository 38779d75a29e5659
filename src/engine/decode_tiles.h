// Re-lays a loaded model's 4-bit projection weights in ops::QuantLayout::DecodeTiles, the order
// in which CUDA's batch-1 tensor-core mat-vec streams them (docs/perf.md, issue 7, step 23).
#pragma once

#include "mlxn/core/device.h"
#include "mlxn/engine/model_weights.h"

namespace mlxn::engine::detail {

/// Tiles every 2-D MLX 4-bit Linear whose shape allows it (ops::decode_tiles_fit): the fused
/// q/k/v and gate/up weights with their part views (only when every part is whole 16-row tiles),
/// o, down and an untied lm head. Expert stacks, routers and a head tied to the embedding table
/// (which the row lookup reads) keep the row order, as does a weight the device has no room to
/// copy. One layer at a time, so the peak extra memory is one layer's weights (or the head).
/// Returns the number of weights tiled.
int tile_weights_for_decode(ModelWeights& w, Device& device);

/// Whether the lm head is the quantized embedding table itself (tied weights), which the row
/// lookup reads in MLX's order: neither tiled nor streamed by the fused decode step.
bool head_tied_to_embedding(const ModelWeights& w);

}  // namespace mlxn::engine::detail
