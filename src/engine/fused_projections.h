// Private to the weight loader: projections that read the same input (q/k/v, gate/up) stored in
// one allocation, so that decode runs one mat-vec over all their rows instead of one small,
// latency-bound mat-vec per part. Decides when the parts' storage allows it and loads them
// fused, or one by one when it does not.
#pragma once

#include <span>
#include <vector>

#include "weight_source.h"

namespace mlxn::engine::detail {

/// True when projections stored as `formats` (in row order) can be stacked by output rows into
/// one Linear: two or more parts of one kind and in-features, with one dtype, MLX bits and group
/// size or GGML type, and biases on all of them or none; GGML parts must also start at 4-byte
/// aligned offsets (the GGML matmul's load width, as ggml_matmul checks).
bool can_fuse(std::span<const LinearFormat> formats);

/// The fused Linear for `parts` stored as `first` (the format of parts.front(), which can_fuse
/// has matched against the others): kind, in-features and the parts' rows summed, with
/// zero-filled buffers for all of them (and the bias) allocated through `up`. Each source then
/// writes every part into its rows (Linear::rows).
Linear alloc_fused(Uploader& up, const LinearFormat& first, std::span<const LinearBinding> parts);

/// Projections that read one input, as loaded.
struct FusedProjections {
  Linear fused;               // all parts' rows in order, or invalid when loaded one by one
  std::vector<Linear> parts;  // in the order given; zero-copy row views of `fused` when valid
};

/// Loads `parts` into one allocation when can_fuse allows it, one by one otherwise.
FusedProjections load_projections(WeightSource& src, std::span<const LinearBinding> parts);

}  // namespace mlxn::engine::detail
