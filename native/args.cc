#include "args.h"

#include <cmath>
#include <cstring>

#include "errors.h"

namespace commy {

namespace {

bool Invalid(napi_env env, const char* name, const char* what) {
  ThrowCoded(env, code::kInvalidArgument, std::string("\"") + name + "\" " + what);
  return false;
}

bool GetNumber(napi_env env, napi_value v, const char* name, double* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    return Invalid(env, name, "must be a number");
  }
  if (napi_get_value_double(env, v, out) != napi_ok) {
    return Invalid(env, name, "must be a number");
  }
  return true;
}

}  // namespace

bool IsUndefined(napi_env env, napi_value v) {
  napi_valuetype t;
  return v == nullptr || (napi_typeof(env, v, &t) == napi_ok && t == napi_undefined);
}

bool GetIndex(napi_env env, napi_value v, const char* name, uint64_t* out) {
  double d;
  if (!GetNumber(env, v, name, &d)) return false;
  if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > kMaxSafeInteger) {
    return Invalid(env, name, "must be a non-negative safe integer");
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool GetCount(napi_env env, napi_value v, const char* name, uint64_t* out) {
  double d;
  if (!GetNumber(env, v, name, &d)) return false;
  if (d == INFINITY) {
    *out = UINT64_MAX;
    return true;
  }
  if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > kMaxSafeInteger) {
    return Invalid(env, name, "must be a non-negative integer or Infinity");
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool GetUint32(napi_env env, napi_value v, const char* name, uint32_t* out) {
  double d;
  if (!GetNumber(env, v, name, &d)) return false;
  if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > 4294967295.0) {
    return Invalid(env, name, "must be an integer in [0, 2^32 - 1]");
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

bool GetTimeout(napi_env env, napi_value v, const char* name, int64_t* ns) {
  double d;
  if (!GetNumber(env, v, name, &d)) return false;
  if (std::isnan(d) || d < 0) {
    return Invalid(env, name, "must be a non-negative number of milliseconds or Infinity");
  }
  // Beyond ~31 years there is no practical difference, and ns arithmetic stays in range.
  if (d > 1e12) {
    *ns = -1;
    return true;
  }
  *ns = static_cast<int64_t>(d * 1e6);
  return true;
}

bool GetBool(napi_env env, napi_value v, const char* name, bool* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean ||
      napi_get_value_bool(env, v, out) != napi_ok) {
    return Invalid(env, name, "must be a boolean");
  }
  return true;
}

bool GetString(napi_env env, napi_value v, const char* name, std::string* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    return Invalid(env, name, "must be a string");
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) {
    return Invalid(env, name, "must be a string");
  }
  out->assign(len + 1, '\0');
  size_t copied = 0;
  if (napi_get_value_string_utf8(env, v, &(*out)[0], len + 1, &copied) != napi_ok) {
    return Invalid(env, name, "must be a string");
  }
  out->resize(copied);
  return true;
}

bool GetPath(napi_env env, napi_value v, const char* name, std::string* out) {
  if (!GetString(env, v, name, out)) return false;
  if (out->empty()) return Invalid(env, name, "must not be empty");
  if (std::memchr(out->data(), '\0', out->size()) != nullptr) {
    return Invalid(env, name, "must not contain NUL characters");
  }
  return true;
}

bool GetBytes(napi_env env, napi_value v, const char* name, const uint8_t** data,
              size_t* length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) {
    return Invalid(env, name, "must be a Uint8Array");
  }
  napi_typedarray_type type;
  size_t len = 0;
  void* ptr = nullptr;
  napi_value ab = nullptr;
  size_t byte_offset = 0;
  if (napi_get_typedarray_info(env, v, &type, &len, &ptr, &ab, &byte_offset) != napi_ok ||
      type != napi_uint8_array) {
    return Invalid(env, name, "must be a Uint8Array");
  }
  bool detached = false;
  if (ab == nullptr || napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok) {
    return Invalid(env, name, "has no usable buffer");
  }
  if (detached) {
    ThrowCoded(env, code::kDetached, std::string("\"") + name + "\" is a view of a detached ArrayBuffer");
    return false;
  }
  if (len != 0 && ptr == nullptr) return Invalid(env, name, "has no backing store");
  *data = static_cast<const uint8_t*>(ptr);
  *length = len;
  return true;
}

}  // namespace commy
