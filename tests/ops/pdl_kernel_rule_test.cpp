// The programmatic-dependent-launch rule of the CUDA kernels (kernel_abi.h, LaunchConfig::pdl): a
// kernel launched as a dependent of the previous kernel may run while that kernel still writes
// its output, so it must call pdl_wait() (or pdl_enter()) before it touches memory. Forgetting it
// is a race no functional test reliably catches, so the sources are checked here: in a kernel
// file where some LaunchConfig turns `pdl` on, every __global__ kernel must call one of them.
// (File-wide on purpose: a file's configs pick among its kernels through helpers, so which
// kernel a config launches is not visible to a text scan.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace mlxn {
namespace {

namespace fs = std::filesystem;

// The body of the function whose opening brace is at `open` (braces balanced; the kernel
// sources have no braces inside strings or comments that would unbalance this).
std::string body_at(const std::string& src, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < src.size(); ++i) {
    if (src[i] == '{') ++depth;
    if (src[i] == '}' && --depth == 0) return src.substr(open, i - open + 1);
  }
  return src.substr(open);
}

// Kernels of `src` (a .cu/.cuh file's text) that break the rule, by name.
std::vector<std::string> kernels_without_wait(const std::string& src) {
  // A LaunchConfig with pdl on: the brace-initialized {func, grid, block, smem, true} the
  // configs return, or an explicit assignment.
  static const std::regex pdl_on(R"(,\s*true\s*\}\s*;|\.pdl\s*=\s*true)");
  if (!std::regex_search(src, pdl_on)) return {};
  static const std::regex kernel(
      R"(__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s*)?(\w+)\s*\()");
  static const std::regex waits(R"(\bpdl_(wait|enter)\s*\(\s*\))");
  std::vector<std::string> bad;
  for (std::sregex_iterator it(src.begin(), src.end(), kernel), end; it != end; ++it) {
    const std::size_t open = src.find('{', static_cast<std::size_t>(it->position(0)));
    if (open == std::string::npos) continue;
    if (!std::regex_search(body_at(src, open), waits)) bad.push_back((*it)[1].str());
  }
  return bad;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(PdlKernelRule, CheckerFindsAKernelThatDoesNotWait) {
  const std::string ok = R"(
__global__ void __launch_bounds__(128) good_kernel(const DeviceArgs args) {
  pdl_enter();
  if (x) { y(); }
}
LaunchConfig good_config(const DeviceArgs& a) { return {f, dim3(1), dim3(32), 0, true}; }
)";
  EXPECT_TRUE(kernels_without_wait(ok).empty());
  const std::string bad = ok + R"(
template <class T>
__global__ void
    forgetful_kernel(const DeviceArgs args) {
  out[0] = in[0];
}
)";
  EXPECT_EQ(kernels_without_wait(bad), std::vector<std::string>{"forgetful_kernel"});
  // Without any pdl config the file's kernels may do as they like.
  const std::string plain = R"(
__global__ void plain_kernel(const DeviceArgs args) { out[0] = in[0]; }
LaunchConfig plain_config(const DeviceArgs& a) { return {f, dim3(1), dim3(32), 0}; }
)";
  EXPECT_TRUE(kernels_without_wait(plain).empty());
}

TEST(PdlKernelRule, EveryKernelOfAFileThatLaunchesWithPdlWaits) {
  const fs::path dir = MLXN_CUDA_KERNEL_DIR;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int files_with_pdl = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string ext = e.path().extension().string();
    if (ext != ".cu" && ext != ".cuh") continue;
    const std::string src = read_file(e.path());
    if (std::regex_search(src, std::regex(R"(,\s*true\s*\}\s*;)"))) ++files_with_pdl;
    for (const std::string& k : kernels_without_wait(src)) {
      ADD_FAILURE() << e.path().filename().string() << ": kernel " << k
                    << " is in a file that launches kernels with LaunchConfig::pdl but never "
                       "calls pdl_wait()/pdl_enter()";
    }
  }
  // The decode-step kernels launch with pdl: a scan that finds none is scanning the wrong place.
  EXPECT_GE(files_with_pdl, 10) << dir;
}

}  // namespace
}  // namespace mlxn
