// Throwing coded errors to JS. Every helper leaves a pending JS exception; callers return
// immediately afterwards (C++ exceptions are disabled).
#ifndef COMMY_NATIVE_ERRORS_H_
#define COMMY_NATIVE_ERRORS_H_

#include <node_api.h>

#include <string>

namespace commy {

namespace code {
constexpr const char* kInvalidArgument = "ERR_COMMY_INVALID_ARGUMENT";
constexpr const char* kOutOfBounds = "ERR_COMMY_OUT_OF_BOUNDS";
constexpr const char* kLengthMismatch = "ERR_COMMY_LENGTH_MISMATCH";
constexpr const char* kDetached = "ERR_COMMY_DETACHED";
constexpr const char* kClosed = "ERR_COMMY_CLOSED";
constexpr const char* kFileTooShort = "ERR_COMMY_FILE_TOO_SHORT";
constexpr const char* kKernelUnavailable = "ERR_COMMY_KERNEL_UNAVAILABLE";
constexpr const char* kBusy = "ERR_COMMY_BUSY";
}  // namespace code

// new Error(message) with .code = code (and .path when path != nullptr).
napi_value MakeCodedError(napi_env env, const char* code, const std::string& message,
                          const char* path = nullptr);
// Like Node's fs errors: message "ENOENT: no such file or directory, open '/x'",
// .errno = -err (libuv convention, as in Node), .code = "ENOENT", .syscall, .path.
napi_value MakeErrnoError(napi_env env, int err, const char* syscall,
                          const char* path = nullptr);

void ThrowCoded(napi_env env, const char* code, const std::string& message,
                const char* path = nullptr);
void ThrowErrno(napi_env env, int err, const char* syscall, const char* path = nullptr);

}  // namespace commy

#endif  // COMMY_NATIVE_ERRORS_H_
