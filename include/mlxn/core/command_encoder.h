// CommandEncoder: records kernel dispatches into a command buffer and submits it to a queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn {

namespace detail {
struct EncoderState;
}

class Timeline;
class ComputeGraph;
class GraphExec;

/// How a kernel uses a bound buffer; drives hazard tracking.
enum class Access : std::uint8_t { Read, Write, ReadWrite };

/// One buffer binding of a dispatch.
struct Arg {
  Buffer buffer;
  Access access;
  static Arg in(const Buffer& b) { return {b, Access::Read}; }
  static Arg out(const Buffer& b) { return {b, Access::Write}; }
  static Arg inout(const Buffer& b) { return {b, Access::ReadWrite}; }
};

/// Most bindings and inline parameter bytes one dispatch may carry.
inline constexpr std::size_t kMaxBindings = 8;
inline constexpr std::size_t kMaxParamBytes = 256;

/// Records dispatches into one command buffer at a time. commit() hands the buffer to the queue
/// and returns at once; wait() blocks until committed work is done and rethrows its device error.
/// Dispatches after a commit open a new command buffer. Not thread-safe: one encoder per thread.
class CommandEncoder {
 public:
  CommandEncoder(Device device, Queue queue);
  ~CommandEncoder();
  CommandEncoder(CommandEncoder&&) noexcept;
  CommandEncoder& operator=(CommandEncoder&&) noexcept;

  /// Encodes `kernel` over `args` with `params` copied inline. `op` names the operation kind for
  /// graph capture ("add", "rms_norm"). Throws InvalidArgument for too many bindings/bytes, an
  /// invalid buffer, a buffer of another device, or a kernel of another backend.
  void dispatch(const Kernel& kernel, std::span<const Arg> args, const void* params,
                std::size_t params_bytes, std::string_view op = {});
  void dispatch(const Kernel& kernel, std::initializer_list<Arg> args, const void* params,
                std::size_t params_bytes, std::string_view op = {}) {
    dispatch(kernel, std::span<const Arg>(args.begin(), args.size()), params, params_bytes, op);
  }
  template <class P>
  void dispatch(const Kernel& kernel, std::initializer_list<Arg> args, const P& params,
                std::string_view op = {}) {
    static_assert(std::is_trivially_copyable_v<P>, "kernel params must be trivially copyable");
    dispatch(kernel, args, &params, sizeof(P), op);
  }
  /// Like dispatch, but first inserts a barrier if the args conflict (RAW, WAR, WAW) with the
  /// ranges used since the last barrier.
  void dispatch_tracked(const Kernel& kernel, std::span<const Arg> args, const void* params,
                        std::size_t params_bytes, std::string_view op = {});
  /// When on, every dispatch is tracked (default off).
  void set_auto_barriers(bool on);

  /// Orders everything after the barrier behind everything before it.
  void barrier();
  /// Emits a barrier only when `reads`/`writes` overlap ranges used since the last barrier
  /// (read-after-write, write-after-read, write-after-write). Returns whether it emitted one.
  bool barrier_between(std::span<const Buffer> reads, std::span<const Buffer> writes);

  /// The queue's next command waits until `timeline` reaches `value` (device-side wait).
  void wait_for(const Timeline& timeline, std::uint64_t value);
  /// Sets `timeline` to `value` once everything encoded before it has finished (device-side).
  void signal(const Timeline& timeline, std::uint64_t value);
  /// Launches an instantiated graph as one command of this command buffer.
  void launch(GraphExec& graph);

  /// Submits the current command buffer (even an empty one) and returns without waiting.
  void commit();
  void commit(std::string label);
  /// Waits for every command buffer committed by this encoder; rethrows the first device error.
  void wait();
  /// commit() then wait().
  void commit_and_wait();
  /// Opens a fresh command buffer now (the command-buffer counter rises); normally implicit.
  void open_command_buffer();
  /// Drops everything encoded since the last commit without running it.
  void discard();

  void set_label(std::string label);
  /// Records GPU start/end of each command buffer (costs two timestamps per buffer).
  void set_timing(bool on);
  /// Device time of the most recently waited command buffer in milliseconds, if timing was on.
  std::optional<double> gpu_time_ms() const;

  /// Sends dispatches and barriers to `graph` instead of the command buffer until end_capture().
  void begin_capture(ComputeGraph& graph);
  void end_capture();
  bool is_capturing() const;

  /// Dispatches encoded into the current (uncommitted) command buffer.
  std::size_t pending_dispatches() const;
  /// Number of command buffers committed by this encoder and not yet waited.
  std::size_t in_flight() const;
  Device& device();
  const Queue& queue() const;
  /// Moves future command buffers to another queue of the same device.
  void set_queue(Queue queue);

 private:
  void emit_barrier(bool automatic);
  std::unique_ptr<detail::EncoderState> s_;
};

}  // namespace mlxn
