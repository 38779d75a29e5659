// Private: the per-family expected-tensor generator shared by the safetensors and GGUF checks.
#pragma once

#include <functional>

#include "mlxn/io/model_dir_tensors.h"

namespace mlxn::io {

/// Calls `fn` for each tensor `c`'s family needs under `naming` (Hugging Face names), in
/// order; the architecture must be known.
void visit_expected(const ModelConfig& c, const TensorNaming& naming,
                    const std::function<void(ExpectedTensor)>& fn);

}  // namespace mlxn::io
