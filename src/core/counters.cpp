// Process-wide runtime counters (relaxed atomics: they are statistics, not synchronization).
#include "mlxn/core/counters.h"

#include <atomic>

namespace mlxn::counters {
namespace {
std::atomic<std::uint64_t> g_dispatches{0};
std::atomic<std::uint64_t> g_command_buffers{0};
std::atomic<std::uint64_t> g_syncs{0};
std::atomic<std::uint64_t> g_barriers{0};
std::atomic<std::uint64_t> g_auto_barriers{0};
}  // namespace

CounterSnapshot read() {
  CounterSnapshot s;
  s.dispatches = g_dispatches.load(std::memory_order_relaxed);
  s.command_buffers = g_command_buffers.load(std::memory_order_relaxed);
  s.syncs = g_syncs.load(std::memory_order_relaxed);
  s.barriers = g_barriers.load(std::memory_order_relaxed);
  s.auto_barriers = g_auto_barriers.load(std::memory_order_relaxed);
  return s;
}

void reset() {
  g_dispatches.store(0, std::memory_order_relaxed);
  g_command_buffers.store(0, std::memory_order_relaxed);
  g_syncs.store(0, std::memory_order_relaxed);
  g_barriers.store(0, std::memory_order_relaxed);
  g_auto_barriers.store(0, std::memory_order_relaxed);
}

void add_dispatch() { g_dispatches.fetch_add(1, std::memory_order_relaxed); }
void add_command_buffer() { g_command_buffers.fetch_add(1, std::memory_order_relaxed); }
void add_sync() { g_syncs.fetch_add(1, std::memory_order_relaxed); }
void add_barrier(bool automatic) {
  g_barriers.fetch_add(1, std::memory_order_relaxed);
  if (automatic) g_auto_barriers.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace mlxn::counters
