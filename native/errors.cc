#include "errors.h"

#include <uv.h>  // uv_err_name / uv_strerror: the exact names and texts Node's fs errors use

#include <cstring>

namespace commy {

namespace {

bool SetString(napi_env env, napi_value obj, const char* key, const char* value) {
  napi_value v;
  if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) != napi_ok) return false;
  return napi_set_named_property(env, obj, key, v) == napi_ok;
}

napi_value NewError(napi_env env, const char* code, const std::string& message) {
  napi_value code_v, msg_v, err;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok) return nullptr;
  if (napi_create_string_utf8(env, message.data(), message.size(), &msg_v) != napi_ok) {
    return nullptr;
  }
  // napi_create_error sets err.code itself.
  if (napi_create_error(env, code_v, msg_v, &err) != napi_ok) return nullptr;
  return err;
}

void Throw(napi_env env, napi_value err, const char* code, const std::string& message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;  // keep the first error
  if (err == nullptr || napi_throw(env, err) != napi_ok) {
    napi_throw_error(env, code, message.c_str());
  }
}

}  // namespace

napi_value MakeCodedError(napi_env env, const char* code, const std::string& message,
                          const char* path) {
  napi_value err = NewError(env, code, message);
  if (err != nullptr && path != nullptr) SetString(env, err, "path", path);
  return err;
}

napi_value MakeErrnoError(napi_env env, int err, const char* syscall, const char* path) {
  const char* name = uv_err_name(-err);
  const char* text = uv_strerror(-err);
  std::string message = std::string(name) + ": " + text + ", " + syscall;
  if (path != nullptr) message += std::string(" '") + path + "'";
  // Same own-property order as Node's fs errors: errno, code, syscall, path.
  napi_value msg_v, e, errno_v;
  if (napi_create_string_utf8(env, message.data(), message.size(), &msg_v) != napi_ok ||
      napi_create_error(env, nullptr, msg_v, &e) != napi_ok) {
    return nullptr;
  }
  if (napi_create_int32(env, -err, &errno_v) == napi_ok) {
    napi_set_named_property(env, e, "errno", errno_v);
  }
  SetString(env, e, "code", name);
  SetString(env, e, "syscall", syscall);
  if (path != nullptr) SetString(env, e, "path", path);
  return e;
}

void ThrowCoded(napi_env env, const char* code, const std::string& message, const char* path) {
  Throw(env, MakeCodedError(env, code, message, path), code, message);
}

void ThrowErrno(napi_env env, int err, const char* syscall, const char* path) {
  Throw(env, MakeErrnoError(env, err, syscall, path), uv_err_name(-err), syscall);
}

}  // namespace commy
