// The CPU backend: host memory, worker-thread queues, timelines and stored graphs.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "backends/cpu/cpu_graph.h"
#include "backends/cpu/cpu_queue.h"
#include "backends/cpu/cpu_timeline.h"
#include "backends/cpu/thread_pool.h"
#include "core/backend.h"
#include "mlxn/core/error.h"

namespace mlxn::cpu {

void register_kernels(KernelRegistry& registry);

void CpuGraphExec::set_params(std::size_t dispatch_index, const void* params, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  detail::Command& c = commands_.at(dispatch_index_.at(dispatch_index));
  std::memcpy(c.params.data(), params, bytes);
  c.params_bytes = static_cast<std::uint16_t>(bytes);
}

namespace {

// Alignment of every CPU allocation: a cache line, so vector loads never split lines at the start.
constexpr std::size_t kAlignment = 64;

std::size_t meminfo_kb(const std::string& key) {
  std::ifstream f("/proc/meminfo");
  std::string k;
  std::size_t v = 0;
  std::string unit;
  while (f >> k >> v >> unit) {
    if (k == key + ":") return v;
  }
  return 0;
}

class CpuBackend final : public detail::BackendImpl {
 public:
  CpuBackend() {
    registry_ = std::make_unique<KernelRegistry>(Backend::Cpu);
    register_kernels(*registry_);
  }

  Backend kind() const override { return Backend::Cpu; }

  std::string name() const override {
    return "CPU (" + std::to_string(thread_count()) + " threads)";
  }

  MemoryInfo memory_info() const override {
    MemoryInfo m;
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGE_SIZE);
    m.total = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * page : 0;
    m.free = meminfo_kb("MemAvailable") * 1024;
    return m;
  }

  void allocate(detail::Storage& s) override {
    const std::size_t rounded = (s.bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (!p) {
      throw Error(ErrorKind::Allocation,
                  "CPU: could not allocate " + std::to_string(s.bytes) + " bytes");
    }
    std::memset(p, 0, rounded);
    s.ptr = p;
    s.host = p;  // host memory is always host-visible
  }

  void deallocate(detail::Storage& s) noexcept override {
    std::free(s.ptr);
    s.ptr = s.host = nullptr;
  }

  void write(const detail::Storage& s, std::size_t offset, const void* src,
             std::size_t n) override {
    std::memcpy(static_cast<char*>(s.ptr) + offset, src, n);
  }

  void read(const detail::Storage& s, std::size_t offset, void* dst, std::size_t n) override {
    std::memcpy(dst, static_cast<const char*>(s.ptr) + offset, n);
  }

  std::shared_ptr<detail::QueueImpl> create_queue() override {
    auto q = std::make_shared<CpuQueue>();
    std::lock_guard<std::mutex> lock(mutex_);
    queues_.push_back(q);
    return q;
  }

  std::shared_ptr<detail::TimelineImpl> create_timeline() override {
    return std::make_shared<CpuTimeline>();
  }

  std::shared_ptr<detail::GraphExecImpl> instantiate_graph(
      const std::vector<detail::Command>& commands) override {
    return std::make_shared<CpuGraphExec>(commands);
  }

  void synchronize() override {
    std::vector<std::shared_ptr<CpuQueue>> live;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = queues_.begin(); it != queues_.end();) {
        if (auto q = it->lock()) {
          live.push_back(std::move(q));
          ++it;
        } else {
          it = queues_.erase(it);
        }
      }
    }
    for (auto& q : live) q->synchronize();
  }

 private:
  std::mutex mutex_;
  std::vector<std::weak_ptr<CpuQueue>> queues_;
};

}  // namespace
}  // namespace mlxn::cpu

namespace mlxn::detail {
std::shared_ptr<BackendImpl> open_cpu_backend() { return std::make_shared<cpu::CpuBackend>(); }
}  // namespace mlxn::detail
