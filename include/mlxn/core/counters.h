// Process-wide runtime counters: how many dispatches, command buffers, host syncs and barriers ran.
#pragma once

#include <cstdint>

namespace mlxn {

/// A snapshot of the process-wide counters.
struct CounterSnapshot {
  std::uint64_t dispatches = 0;       // kernel dispatches encoded
  std::uint64_t command_buffers = 0;  // command buffers opened
  std::uint64_t syncs = 0;            // host waits on device work
  std::uint64_t barriers = 0;         // barriers encoded (explicit and automatic)
  std::uint64_t auto_barriers = 0;    // of those, inserted by range-conflict tracking
};

namespace counters {
/// Current values (each read atomically).
CounterSnapshot read();
/// Sets every counter to zero.
void reset();

// Used by the runtime; relaxed atomic increments.
void add_dispatch();
void add_command_buffer();
void add_sync();
void add_barrier(bool automatic);
}  // namespace counters

}  // namespace mlxn
