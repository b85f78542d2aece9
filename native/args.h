// Argument validation for every entry point. Each Get* returns false after throwing
// ERR_COMMY_INVALID_ARGUMENT (or ERR_COMMY_DETACHED for detached buffers); the caller then
// returns immediately.
#ifndef COMMY_NATIVE_ARGS_H_
#define COMMY_NATIVE_ARGS_H_

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace commy {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

bool IsUndefined(napi_env env, napi_value v);
// A number that is a finite, non-negative integer <= 2^53 - 1.
bool GetIndex(napi_env env, napi_value v, const char* name, uint64_t* out);
// Like GetIndex, but +Infinity is accepted and returned as UINT64_MAX (wake count).
bool GetCount(napi_env env, napi_value v, const char* name, uint64_t* out);
// Integer in [0, 2^32 - 1].
bool GetUint32(napi_env env, napi_value v, const char* name, uint32_t* out);
// Milliseconds: a non-negative number (fractions allowed) or +Infinity.
// Returns nanoseconds in *ns, or -1 for "no timeout" (Infinity or absurdly large values).
bool GetTimeout(napi_env env, napi_value v, const char* name, int64_t* ns);
bool GetBool(napi_env env, napi_value v, const char* name, bool* out);
// A non-empty string without NUL characters.
bool GetPath(napi_env env, napi_value v, const char* name, std::string* out);
// Any JS string.
bool GetString(napi_env env, napi_value v, const char* name, std::string* out);
// A Uint8Array (Buffer included) whose buffer is not detached.
bool GetBytes(napi_env env, napi_value v, const char* name, const uint8_t** data,
              size_t* length);

}  // namespace commy

#endif  // COMMY_NATIVE_ARGS_H_
