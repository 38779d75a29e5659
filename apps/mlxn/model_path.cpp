// Default-model lookup: see model_path.h.
#include "apps/mlxn/model_path.h"

#include <algorithm>
#include <cstdlib>
#include <system_error>

#include "mlxn/core/error.h"

namespace mlxn::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* kEnvVar = "MLXN_DEFAULT_MODEL";

// Directory of the running executable (Linux: /proc/self/exe), or empty when unknown.
fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path();
}

}  // namespace

std::vector<fs::path> default_model_candidates() {
  if (const char* env = std::getenv(kEnvVar); env != nullptr && env[0] != '\0') {
    // An explicit setting wins alone: silently falling back to another model would hide a typo.
    return {fs::path(env)};
  }
  std::vector<fs::path> out;
  if (const fs::path dir = executable_dir(); !dir.empty()) {
    out.push_back((dir / ".." / "models" / "default").lexically_normal());
    out.push_back(dir / "models" / "default");
  }
#ifdef MLXN_SOURCE_DIR
  out.push_back(fs::path(MLXN_SOURCE_DIR) / "models" / "default");
#endif
  // A build directory inside the source tree makes two of these the same place.
  std::vector<fs::path> unique;
  for (const fs::path& p : out) {
    if (std::find(unique.begin(), unique.end(), p.lexically_normal()) == unique.end()) {
      unique.push_back(p.lexically_normal());
    }
  }
  return unique;
}

fs::path resolve_model_path(const std::string& given) {
  if (!given.empty()) return fs::path(given);
  const std::vector<fs::path> candidates = default_model_candidates();
  std::string looked;
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::exists(p, ec)) return p;
    looked += (looked.empty() ? "" : ", ") + p.string();
  }
  const bool from_env = std::getenv(kEnvVar) != nullptr && std::getenv(kEnvVar)[0] != '\0';
  throw Error(ErrorKind::Io,
              std::string("no model given and the default model was not found (looked at ") +
                  (from_env ? "$" + std::string(kEnvVar) + " = " : "") + looked +
                  "); pass --model PATH (a model directory or .gguf file) or set $" + kEnvVar);
}

}  // namespace mlxn::cli
