// Where a command's model comes from: the --model argument, or, without one, the bundled default
// model directory, looked up in a fixed order so an installed binary, a build tree and a source
// checkout all find it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mlxn::cli {

/// The places the default model is looked for, in order: $MLXN_DEFAULT_MODEL when set (then
/// only that), else <executable dir>/../models/default, <executable dir>/models/default and the
/// source tree's models/default (MLXN_SOURCE_DIR, set by the build).
std::vector<std::filesystem::path> default_model_candidates();

/// `given` when non-empty (its problems are reported by the loader, which names the path);
/// otherwise the first default-model candidate that exists. Throws Error(Io) listing every
/// place looked at and saying how to pass --model when none exists.
std::filesystem::path resolve_model_path(const std::string& given);

}  // namespace mlxn::cli
