// Load-progress bar on stderr: see progress_bar.h.
#include "apps/mlxn/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>

namespace mlxn::cli {

namespace {

constexpr int kBarWidth = 30;

// True while a bar is drawn without its final newline (the CLI is single-threaded).
bool g_bar_open = false;

}  // namespace

std::string progress_line(const std::string& label, std::int64_t done, std::int64_t total) {
  const double frac =
      total > 0 ? std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0)
                : 0.0;
  const int filled = static_cast<int>(frac * kBarWidth);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(kBarWidth - filled), '.');
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s [%s] %3d%%  %.2f / %.2f GiB", label.c_str(), bar.c_str(),
                static_cast<int>(frac * 100.0), static_cast<double>(done) / kGiB,
                static_cast<double>(total) / kGiB);
  return buf;
}

void close_progress_line() {
  if (!g_bar_open) return;
  std::fputc('\n', stderr);
  g_bar_open = false;
}

engine::LoadProgress make_load_progress(const std::string& label) {
  if (::isatty(STDERR_FILENO) == 0) return {};
  // Shared state: LoadProgress is a copyable std::function.
  struct State {
    int shown = -1;  // percentage last drawn
    bool finished = false;
  };
  auto state = std::make_shared<State>();
  return [state, label](std::int64_t done, std::int64_t total) {
    if (total < kProgressMinBytes || state->finished) return;
    const int percent = static_cast<int>(
        std::clamp(static_cast<double>(done) * 100.0 / static_cast<double>(total), 0.0, 100.0));
    if (percent == state->shown) return;
    state->shown = percent;
    // \r redraws in place; \x1b[K clears what a longer earlier line left behind.
    std::fprintf(stderr, "\r%s\x1b[K", progress_line(label, done, total).c_str());
    g_bar_open = true;
    if (done >= total) {
      std::fputc('\n', stderr);
      state->finished = true;
      g_bar_open = false;
    }
    std::fflush(stderr);
  };
}

}  // namespace mlxn::cli
