// Debugging ops that check data on the device and fail the command buffer when it is wrong.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// Fails the command buffer (Error kind CommandBuffer at wait) if x holds a NaN or infinity.
/// x: any shape, f32/f16/bf16. Use it to locate where non-finite values first appear.
void assert_finite(CommandEncoder& encoder, const Buffer& x);

}  // namespace mlxn::ops
