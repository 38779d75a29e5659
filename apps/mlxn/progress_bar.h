// A load-progress bar on stderr for Model::load (ModelOptions::progress): drawn only when stderr
// is a terminal and the weights are large enough for the wait to be noticeable, so scripts and
// small models see nothing.
#pragma once

#include <cstdint>
#include <string>

#include "mlxn/engine/model_weights.h"

namespace mlxn::cli {

/// Weights smaller than this load without a bar (about 100 MB).
inline constexpr std::int64_t kProgressMinBytes = 100'000'000;

/// A LoadProgress callback that draws "loading [####....]  42%  1.3 / 3.1 GiB" on stderr,
/// redrawn only when the shown percentage changes and finished with a newline at 100%. Returns
/// an empty callback (no bar at all) when stderr is not a terminal.
engine::LoadProgress make_load_progress(const std::string& label = "loading");

/// Ends a bar left unfinished (a load that failed half way) with a newline, so that an error
/// message starts on a line of its own. Does nothing when no bar is open.
void close_progress_line();

/// The bar's text for `done` of `total` bytes (exposed for its layout, e.g. in tests).
std::string progress_line(const std::string& label, std::int64_t done, std::int64_t total);

}  // namespace mlxn::cli
