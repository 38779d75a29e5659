// `mlxn selftest`: a 5-stage encoder session (fence, reset, wait) on every available backend,
// checked against known sums, with the session's scoreboard printed.
#include <cstdio>
#include <string>
#include <vector>

#include "apps/mlxn/commands.h"
#include "mlxn/core/counters.h"
#include "mlxn/core/device.h"
#include "mlxn/core/encoder_session.h"
#include "mlxn/ops/elementwise.h"

namespace mlxn::cli {
namespace {

constexpr int kStages = 5;

// Stage i computes acc = acc + step, so after 5 stages acc = a + 5 * step: each stage reads
// what the previous one wrote, which is only right if the fences order them.
bool run_on(Backend backend) {
  Device device = Device::open(backend);
  const std::vector<float> a = {1, 2, 3, 4}, step = {10, 20, 30, 40};
  Buffer acc = device.alloc(DType::F32, {4});
  Buffer inc = device.alloc(DType::F32, {4});
  acc.write(a);
  inc.write(step);
  const CounterSnapshot before = counters::read();
  EncoderSession session = device.encoder_session();
  for (int i = 0; i < kStages; ++i) {
    ops::add(session.encoder(), acc, inc, acc);
    session.fence_stage("selftest.stage" + std::to_string(i));
    if (i + 1 < kStages) session.reset_for_next_stage();
  }
  session.wait_until_completed();
  const CounterSnapshot after = counters::read();
  const auto got = acc.to_vector<float>();
  bool ok = session.fence_value() == 5 && session.wait_count() == 4 && session.wait_value() == 4;
  for (int i = 0; i < 4; ++i) ok = ok && got[i] == a[i] + kStages * step[i];
  std::printf("%s: %s\n", backend_name(backend), device.name().c_str());
  std::printf("  fence_value=%llu wait_count=%llu wait_value=%llu\n",
              static_cast<unsigned long long>(session.fence_value()),
              static_cast<unsigned long long>(session.wait_count()),
              static_cast<unsigned long long>(session.wait_value()));
  std::printf("  dispatches=%llu command_buffers=%llu syncs=%llu\n",
              static_cast<unsigned long long>(after.dispatches - before.dispatches),
              static_cast<unsigned long long>(after.command_buffers - before.command_buffers),
              static_cast<unsigned long long>(after.syncs - before.syncs));
  std::printf("  result=[%g, %g, %g, %g] expected=[%g, %g, %g, %g]  %s\n", got[0], got[1], got[2],
              got[3], a[0] + 5 * step[0], a[1] + 5 * step[1], a[2] + 5 * step[2],
              a[3] + 5 * step[3], ok ? "ok" : "FAILED");
  return ok;
}

}  // namespace

int cmd_selftest(const Args& args) {
  if (wants_help(args)) {
    std::puts("usage: mlxn selftest\n\nRuns a 5-stage encoder session (5 fences, 4 resets, one "
              "final wait) on every\navailable backend, checks the results and prints the "
              "scoreboard.");
    return 0;
  }
  std::vector<Backend> backends = {Backend::Cpu};
  if (Device::cuda_available()) {
    backends.push_back(Backend::Cuda);
  } else {
    std::puts("cuda: skipped (no usable CUDA device in this build or machine)");
  }
  bool ok = true;
  for (Backend b : backends) ok = run_on(b) && ok;
  std::puts(ok ? "selftest passed" : "selftest FAILED");
  return ok ? 0 : 1;
}

}  // namespace mlxn::cli
