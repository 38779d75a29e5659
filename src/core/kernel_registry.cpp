// KernelRegistry: specialization keys, lazy creation and the cache.
#include "mlxn/core/kernel_registry.h"

#include <algorithm>

#include "mlxn/core/error.h"

namespace mlxn {

Specialization::Specialization(
    std::initializer_list<std::pair<std::string, std::string>> values) {
  for (const auto& [k, v] : values) values_[k] = v;
}

Specialization& Specialization::set(const std::string& name, const std::string& value) {
  values_[name] = value;
  return *this;
}

Specialization& Specialization::set(const std::string& name, std::int64_t value) {
  values_[name] = std::to_string(value);
  return *this;
}

Specialization& Specialization::set(const std::string& name, DType dtype) {
  values_[name] = std::string(dtype_name(dtype));
  return *this;
}

const std::string& Specialization::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    throw Error(ErrorKind::KernelNotFound,
                "specialization constant '" + name + "' missing in " + key("kernel"));
  }
  return it->second;
}

std::string Specialization::key(std::string_view kernel_name) const {
  std::string k(kernel_name);
  for (const auto& [name, value] : values_) {
    k += '|';
    k += name;
    k += ':';
    k += value;
  }
  return k;
}

KernelRegistry::KernelRegistry(Backend backend) : backend_(backend) {}

const Kernel& KernelRegistry::get(std::string_view name, const Specialization& spec) {
  return get_by_key(spec.key(name), name, spec);
}

const Kernel& KernelRegistry::get(std::string_view name, DType dtype) {
  // Same key as Specialization{{"dtype", ...}}.key(name), built without the map.
  std::string key;
  key.reserve(name.size() + 12);
  key.append(name).append("|dtype:").append(dtype_name(dtype));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
  }
  return get_by_key(std::move(key), name, Specialization().set("dtype", dtype));
}

const Kernel& KernelRegistry::get_by_key(std::string key, std::string_view name,
                                         const Specialization& spec) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
  auto f = factories_.find(std::string(name));
  if (f == factories_.end()) {
    throw Error(ErrorKind::KernelNotFound,
                "no kernel named '" + std::string(name) + "' on this backend (key " + key + ")");
  }
  const void* entry = f->second(spec);
  if (!entry) {
    throw Error(ErrorKind::KernelNotFound,
                "kernel '" + std::string(name) + "' has no specialization " + key);
  }
  auto kernel = std::make_unique<Kernel>(Kernel{key, std::string(name), backend_, entry});
  const Kernel& ref = *kernel;
  cache_.emplace(std::move(key), std::move(kernel));
  return ref;
}

void KernelRegistry::register_factory(const std::string& name, KernelFactory factory) {
  if (!factory) throw Error(ErrorKind::InvalidArgument, "register_factory: empty factory");
  std::lock_guard<std::mutex> lock(mutex_);
  factories_[name] = std::move(factory);
  // Cached specializations of the old factory would be stale. Kernel objects are kept alive
  // elsewhere only by pointer in recorded commands, so old entries move to a graveyard.
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (it->second->name == name) {
      retired_.push_back(std::move(it->second));
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

bool KernelRegistry::has_factory(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return factories_.count(std::string(name)) != 0;
}

bool KernelRegistry::is_cached(std::string_view name, const Specialization& spec) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cache_.count(spec.key(name)) != 0;
}

std::size_t KernelRegistry::cached_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cache_.size();
}

std::vector<std::string> KernelRegistry::cached_keys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> keys;
  for (const auto& [k, _] : cache_) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> KernelRegistry::kernel_names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [k, _] : factories_) names.push_back(k);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace mlxn
