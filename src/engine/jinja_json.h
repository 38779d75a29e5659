// Private to the engine: conversion of parsed JSON (nlohmann, kept out of the public headers) to
// Jinja values, for code that already holds a parsed tokenizer_config.json.
#pragma once

#include <nlohmann/json.hpp>

#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja::detail {

/// Objects keep their key order; integers that do not fit int64 become floats.
Value value_from_json(const nlohmann::ordered_json& json);
/// The same for a key-sorted nlohmann::json (the order is already lost there).
Value value_from_json(const nlohmann::json& json);

}  // namespace mlxn::engine::jinja::detail
