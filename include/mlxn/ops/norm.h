// Normalization ops: RMSNorm and its fusion with a following elementwise multiply.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/compute_graph.h"

namespace mlxn::ops {

/// out = x / sqrt(mean(x^2) + eps) * w per row. x, out: [rows, cols] (leading dims flattened);
/// w: [cols]; all one float dtype.
void rms_norm(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& out,
              float eps);
/// out = rms_norm(x, w) * g in one pass. g, out: [rows, cols].
void rms_norm_mul(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& g,
                  const Buffer& out, float eps);
/// ComputeGraph fusion rule turning rms_norm(x, w) -> t; mul(t, g) -> out into rms_norm_mul.
FusionRule rms_norm_mul_fusion(KernelRegistry& registry);

}  // namespace mlxn::ops
