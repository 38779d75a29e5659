// Shared test helpers: a fixture parameterized over backends, seeded random inputs, f16/bf16
// conversion, host<->buffer transfer, NaN poisoning of outputs and relative L2 error.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/core/dtype.h"
#include "mlxn/core/error.h"
#include "mlxn/core/half.h"

namespace mlxn {
/// Prints a Backend parameter as "cpu"/"cuda" (test listings and ctest names show it).
inline void PrintTo(Backend backend, std::ostream* os) {
  *os << backend_name(backend);
}
}  // namespace mlxn

namespace mlxn::test {

/// Why a CUDA device cannot be opened here (the library's own message where it gives one).
inline std::string cuda_unavailable_reason() {
  try {
    Device::open(Backend::Cuda);
  } catch (const Error& e) {
    return e.what();
  }
  return "Device::cuda_available() is false";
}

/// Opens the CUDA device, or returns nullopt with `reason` set when there is none.
inline std::optional<Device> open_cuda_or_reason(std::string& reason) {
  if (!Device::cuda_available()) {
    reason = cuda_unavailable_reason();
    return std::nullopt;
  }
  return Device::open(Backend::Cuda);
}

/// Fixture of the tests that compare a CUDA kernel with the CPU one at shapes too large for the
/// backend-parameterized suites: `cuda_` and `cpu_` open, skipped with the reason where there is
/// no GPU.
class CudaVsCpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    cuda_ = open_cuda_or_reason(reason);
    if (!cuda_) GTEST_SKIP() << "no CUDA device: " << reason;
  }
  std::optional<Device> cuda_;
  Device cpu_ = Device::open(Backend::Cpu);
};

/// Names the instantiations "Cpu" / "Cuda" so CUDA tests carry "Cuda" in their full name.
struct BackendParamName {
  std::string operator()(const ::testing::TestParamInfo<Backend>& info) const {
    return info.param == Backend::Cuda ? "Cuda" : "Cpu";
  }
};

/// Base fixture: opens the device of the parameter; skips CUDA instances without a GPU.
/// Subclasses overriding SetUp must call BackendTest::SetUp() and return if IsSkipped().
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::Cuda) {
      std::string reason;
      device_ = open_cuda_or_reason(reason);
      if (!device_) GTEST_SKIP() << "no CUDA device: " << reason;
    } else {
      device_ = Device::open(GetParam());
    }
  }
  void TearDown() override {
    if (device_) device_->synchronize();
  }

  Device& device() { return *device_; }
  bool is_cuda() const { return GetParam() == Backend::Cuda; }

 private:
  std::optional<Device> device_;
};

/// Instantiates a BackendTest-derived suite as Backends/<suite>.<test>/{Cpu,Cuda}.
#define MLXN_INSTANTIATE_BACKENDS(suite)                                                   \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                                                \
                           ::testing::Values(::mlxn::Backend::Cpu, ::mlxn::Backend::Cuda), \
                           ::mlxn::test::BackendParamName())

// ---------------------------------------------------------------------------------------------
// Random inputs.

/// A fresh seed per call (or MLXN_TEST_SEED when set), printed and recorded so a failure can be
/// reproduced with MLXN_TEST_SEED=<seed>.
inline std::uint32_t test_seed() {
  std::uint32_t seed;
  if (const char* env = std::getenv("MLXN_TEST_SEED"); env && *env) {
    seed = static_cast<std::uint32_t>(std::strtoul(env, nullptr, 10));
  } else {
    seed = std::random_device{}();
  }
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::cout << "[ seed     ] MLXN_TEST_SEED=" << seed << std::endl;
  return seed;
}

/// A generator seeded by test_seed().
inline std::mt19937 seeded_rng() {
  return std::mt19937(test_seed());
}

/// n values uniform in [lo, hi), never exactly zero.
inline std::vector<float> random_floats(std::mt19937& rng, std::size_t n, float lo = -2.0f,
                                        float hi = 2.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) {
    do {
      x = dist(rng);
    } while (x == 0.0f);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Float formats.

/// The f32 value `x` becomes when stored as `dtype` (f32, f16 or bf16; round to nearest even).
inline float round_to(DType dtype, float x) {
  switch (dtype) {
    case DType::F16:
      return f16_bits_to_f32(f32_to_f16_bits(x));
    case DType::BF16:
      return bf16_bits_to_f32(f32_to_bf16_bits(x));
    default:
      return x;
  }
}

inline std::vector<float> round_to(DType dtype, std::vector<float> v) {
  for (auto& x : v) x = round_to(dtype, x);
  return v;
}

/// Host bytes of `values` encoded as `dtype` (f32, f16, bf16 or f64).
inline std::vector<unsigned char> encode(DType dtype, const std::vector<float>& values) {
  std::vector<unsigned char> bytes(values.size() * dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i) {
    unsigned char* p = bytes.data() + i * dtype_size(dtype);
    switch (dtype) {
      case DType::F32:
        std::memcpy(p, &values[i], 4);
        break;
      case DType::F64: {
        const double d = values[i];
        std::memcpy(p, &d, 8);
        break;
      }
      case DType::F16: {
        const std::uint16_t h = f32_to_f16_bits(values[i]);
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::BF16: {
        const std::uint16_t h = f32_to_bf16_bits(values[i]);
        std::memcpy(p, &h, 2);
        break;
      }
      default:
        ADD_FAILURE() << "encode: not a float dtype: " << dtype_name(dtype);
        return {};
    }
  }
  return bytes;
}

/// Decodes host bytes of a float dtype to f32.
inline std::vector<float> decode(DType dtype, const std::vector<unsigned char>& bytes) {
  const std::size_t es = dtype_size(dtype);
  std::vector<float> out(bytes.size() / es);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const unsigned char* p = bytes.data() + i * es;
    switch (dtype) {
      case DType::F32:
        std::memcpy(&out[i], p, 4);
        break;
      case DType::F64: {
        double d;
        std::memcpy(&d, p, 8);
        out[i] = static_cast<float>(d);
        break;
      }
      case DType::F16: {
        std::uint16_t h;
        std::memcpy(&h, p, 2);
        out[i] = f16_bits_to_f32(h);
        break;
      }
      case DType::BF16: {
        std::uint16_t h;
        std::memcpy(&h, p, 2);
        out[i] = bf16_bits_to_f32(h);
        break;
      }
      default:
        ADD_FAILURE() << "decode: not a float dtype: " << dtype_name(dtype);
        return {};
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Host <-> buffer.

/// Writes f32 `values` into `buffer` converted to its dtype; sizes must match exactly.
inline void upload_to(Buffer buffer, const std::vector<float>& values) {
  buffer.write(encode(buffer.dtype(), values));
}

/// A new buffer of `dtype` and `shape` (1-D when empty) holding `values`.
inline Buffer upload(Device& device, const std::vector<float>& values, DType dtype,
                     Shape shape = {}) {
  if (shape.empty()) shape = {static_cast<std::int64_t>(values.size())};
  Buffer b = device.alloc(dtype, shape);
  upload_to(b, values);
  return b;
}

/// Reads a float buffer back as f32.
inline std::vector<float> download(const Buffer& buffer) {
  return decode(buffer.dtype(), buffer.to_vector<unsigned char>());
}

/// Fills a buffer with NaN bit patterns of its dtype (0xFF bytes for integer dtypes), so that any
/// element a kernel fails to write shows up as NaN.
inline void poison(Buffer buffer) {
  std::vector<unsigned char> bytes(buffer.size_bytes(), 0xFF);
  const std::size_t es = dtype_size(buffer.dtype());
  for (std::size_t i = 0; i + es <= bytes.size(); i += es) {
    switch (buffer.dtype()) {
      case DType::F32: {
        const std::uint32_t nan = 0x7fc0dead;
        std::memcpy(&bytes[i], &nan, 4);
        break;
      }
      case DType::F16: {
        const std::uint16_t nan = 0x7e01;
        std::memcpy(&bytes[i], &nan, 2);
        break;
      }
      case DType::BF16: {
        const std::uint16_t nan = 0x7fc1;
        std::memcpy(&bytes[i], &nan, 2);
        break;
      }
      default:
        break;  // 0xFF bytes: NaN for f64, an unlikely value for integers
    }
  }
  buffer.write(bytes);
}

/// A new buffer of `dtype` and `shape`, poisoned.
inline Buffer poisoned(Device& device, DType dtype, Shape shape) {
  Buffer b = device.alloc(dtype, std::move(shape));
  poison(b);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Comparison.

/// ||out - ref|| / ||ref|| in double; +infinity when sizes differ or out holds a NaN or an
/// infinity (so a non-finite output never passes). Falls back to the absolute norm when ref = 0.
inline double rel_l2(const std::vector<float>& out, const std::vector<double>& ref) {
  if (out.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return std::numeric_limits<double>::infinity();
    const double d = static_cast<double>(out[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline double rel_l2(const std::vector<float>& out, const std::vector<float>& ref) {
  return rel_l2(out, std::vector<double>(ref.begin(), ref.end()));
}

/// Number of NaN or infinite values.
inline std::size_t count_non_finite(const std::vector<float>& v) {
  std::size_t n = 0;
  for (float x : v) n += std::isfinite(x) ? 0 : 1;
  return n;
}

/// The usual error bound of a kernel whose output is `dtype`.
inline double dtype_tolerance(DType dtype, double f32_tol) {
  switch (dtype) {
    case DType::F16:
      return 1e-3;
    case DType::BF16:
      return 8e-3;
    default:
      return f32_tol;
  }
}

/// Runs `fn` and returns the mlxn::Error it throws; fails the test when it throws nothing or
/// something else.
template <class F>
std::optional<Error> capture_error(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected mlxn::Error, got std::exception: " << e.what();
    return std::nullopt;
  }
  ADD_FAILURE() << "expected mlxn::Error, nothing was thrown";
  return std::nullopt;
}

/// Expects `stmt` to throw mlxn::Error of `kind`.
#define MLXN_EXPECT_ERROR(stmt, expected_kind)                                         \
  do {                                                                                 \
    auto mlxn_err_ = ::mlxn::test::capture_error([&] { stmt; });                       \
    if (mlxn_err_) {                                                                   \
      EXPECT_EQ(mlxn_err_->kind(), expected_kind) << "message: " << mlxn_err_->what(); \
    }                                                                                  \
  } while (0)

}  // namespace mlxn::test
