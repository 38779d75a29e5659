// KernelRegistry: kernel name + specialization key -> backend kernel, created on first use and cached.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mlxn/core/dtype.h"

namespace mlxn {

enum class Backend;

/// Specialization constants of a kernel (dtype, bits, group size, head dim...), kept sorted by
/// name so the same set always yields the same cache key.
class Specialization {
 public:
  Specialization() = default;
  Specialization(std::initializer_list<std::pair<std::string, std::string>> values);
  Specialization& set(const std::string& name, const std::string& value);
  Specialization& set(const std::string& name, std::int64_t value);
  Specialization& set(const std::string& name, DType dtype);
  /// Value of a constant; throws KernelNotFound naming the kernel when it is missing.
  const std::string& get(const std::string& name) const;
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  /// "name|a:1|b:f32" — the registry's cache key.
  std::string key(std::string_view kernel_name) const;

 private:
  std::map<std::string, std::string> values_;
};

/// A resolved kernel: the backend's entry point for one specialization.
struct Kernel {
  std::string key;       // cache key, "name|spec..."
  std::string name;      // kernel name without specialization
  Backend backend;       // which backend's ABI `entry` follows
  const void* entry;     // CPU: cpu::KernelFn; CUDA: cuda::ConfigureFn
};

/// Makes the entry point for one specialization, or returns nullptr when unsupported.
using KernelFactory = std::function<const void*(const Specialization&)>;

/// Per-device registry. Builtin kernels come from the backend; `register_factory` adds or
/// overrides kernels by name (the way user code brings its own kernels). Thread-safe.
class KernelRegistry {
 public:
  explicit KernelRegistry(Backend backend);

  /// The kernel for name + spec, created on first use. Throws KernelNotFound naming the key.
  const Kernel& get(std::string_view name, const Specialization& spec = {});
  /// Shorthand for get(name, {{"dtype", dtype_name(dtype)}}) without building a Specialization
  /// (the per-dispatch path of most ops).
  const Kernel& get(std::string_view name, DType dtype);
  /// Adds or replaces the factory for `name`; drops cached specializations of it.
  void register_factory(const std::string& name, KernelFactory factory);
  bool has_factory(std::string_view name) const;

  bool is_cached(std::string_view name, const Specialization& spec = {}) const;
  std::size_t cached_count() const;
  /// Every cached key, sorted.
  std::vector<std::string> cached_keys() const;
  /// Every registered kernel name, sorted.
  std::vector<std::string> kernel_names() const;
  Backend backend() const { return backend_; }

 private:
  const Kernel& get_by_key(std::string key, std::string_view name, const Specialization& spec);

  Backend backend_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, KernelFactory> factories_;
  std::unordered_map<std::string, std::unique_ptr<Kernel>> cache_;
  // Kernels dropped by register_factory stay allocated: recorded commands may still point at them.
  std::vector<std::unique_ptr<Kernel>> retired_;
};

}  // namespace mlxn
