// Whether a loaded model can run its decode steps as ops::fused_decode_step (one persistent launch
// for every layer and the head), and the load-time pass that prepares it: the unit-ordered scales
// of every streamed weight and the plan. Like decode_tiles.h, a fast path that never makes loading
// fail: a model that does not fit it, or a device without room for it, keeps the per-op path.
#pragma once

#include <string>

#include "mlxn/core/device.h"
#include "mlxn/engine/block_features.h"
#include "mlxn/engine/kv_cache.h"
#include "mlxn/engine/model_weights.h"
#include "mlxn/io/model_config.h"
#include "mlxn/ops/fused_decode.h"

namespace mlxn::engine::detail {

/// What the fused decode step needs to know of a model.
struct FusedDecodeModel {
  const io::ModelConfig& config;
  const BlockFeatures& features;  // as Model::finish sets them (rope_layout included)
  Backend backend;
  DType dtype;        // compute
  DType cache_dtype;  // KV cache
  const ModelWeights& weights;
};

/// Why `m` cannot run the fused step, in a few words ("backend is CPU", "layer 0 qkv: ..."); the
/// first problem found, cheap checks first. Empty when it can. Weights must already be tiled
/// (tile_weights_for_decode): the step streams the DecodeTiles layout only.
std::string fused_decode_problem(const FusedDecodeModel& m);

/// The plan, or why there is none.
struct FusedDecodeSetup {
  ops::FusedDecodePlan plan;  // valid() when the fused step runs
  std::string reason;         // empty exactly when plan is valid
};

/// Checks `m` (fused_decode_problem), then writes the unit-ordered scales of every streamed
/// weight (one command buffer a layer, as tile_weights_for_decode) and makes the plan over the
/// weights and `cache`'s buffers. A device without room for the scales or the plan's workspace,
/// or a plan the op refuses (Unsupported), gives a reason instead of an error.
FusedDecodeSetup setup_fused_decode(const FusedDecodeModel& m, const KvCache& cache, Device& device,
                                    ops::FusedDecodeInputs inputs);

}  // namespace mlxn::engine::detail
