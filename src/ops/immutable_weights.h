// What the matmul ops tell their kernels about the weights and the gated activation: whether the
// weights may be read before earlier kernels finish, and the GateAct of a GatedActivation.
#pragma once

#include <cstdlib>
#include <initializer_list>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/ops/activations.h"
#include "mlxn/ops/matmul.h"
#include "ops/matmul_params.h"

namespace mlxn::ops::detail {

/// True when every buffer's storage is immutable (Buffer::mark_immutable): no command in flight
/// writes them, so a kernel may stream them before waiting for the previous kernel.
inline bool weights_static(std::initializer_list<const Buffer*> buffers) {
  static const bool off = std::getenv("MLXN_NO_PRELOAD") != nullptr;  // TEMPORARY A/B knob
  if (off) return false;
  for (const Buffer* b : buffers) {
    if (!b->is_immutable()) return false;
  }
  return true;
}

inline std::int32_t gate_act_of(GatedActivation act) {
  switch (act) {
    case GatedActivation::Silu:
      return kGateSilu;
    case GatedActivation::GeluTanh:
      return kGateGeluTanh;
    case GatedActivation::GeluErf:
      return kGateGeluErf;
  }
  return kGateNone;
}

/// out = act(gate) * up with the activation ops (the unfused form of a gated projection).
inline void gated_activation(CommandEncoder& enc, GatedActivation act, const Buffer& gate,
                             const Buffer& up, const Buffer& out) {
  switch (act) {
    case GatedActivation::Silu:
      silu_mul(enc, gate, up, out);
      return;
    case GatedActivation::GeluTanh:
      gelu_mul(enc, gate, up, out, GeluApprox::Tanh);
      return;
    case GatedActivation::GeluErf:
      gelu_mul(enc, gate, up, out, GeluApprox::Erf);
      return;
  }
}

}  // namespace mlxn::ops::detail
