// Entry point of the native addon (build/Release/commy.node). See src/native/Binding.ts
// for the JS-facing contract and native/README.md for the design notes.
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"
#include "diff.h"
#include "errors.h"
#include "js_mapping.h"
#include "js_waiter.h"
#include "uring.h"

// Bumped whenever the JS-facing interface changes. Must equal ABI_VERSION in
// src/native/Binding.ts (the loader refuses a build whose abiVersion differs).
#define COMMY_ABI_VERSION 3

namespace commy {

char kConstructToken = 0;

Commy::Commy(Napi::Env env, Napi::Object exports) : kernel_(BestKernel()) {
  Napi::Function mapping = Mapping::Define(env);
  if (env.IsExceptionPending() || mapping.IsEmpty()) return;
  mapping_ctor = Napi::Persistent(mapping);
  Napi::Function waiter = Waiter::Define(env);
  if (env.IsExceptionPending() || waiter.IsEmpty()) return;
  waiter_ctor = Napi::Persistent(waiter);

  DefineAddon(exports,
              {
                  InstanceValue("abiVersion", Napi::Number::New(env, COMMY_ABI_VERSION),
                                napi_enumerable),
                  InstanceMethod<&Commy::Kernels>("kernels", napi_enumerable),
                  InstanceMethod<&Commy::ActiveKernel>("activeKernel", napi_enumerable),
                  InstanceMethod<&Commy::SetKernel>("setKernel", napi_enumerable),
                  InstanceMethod<&Commy::Diff>("diff", napi_enumerable),
                  InstanceMethod<&Commy::Map>("map", napi_enumerable),
                  InstanceMethod<&Commy::Noop>("noop", napi_enumerable),
                  InstanceMethod<&Commy::WaiterKinds>("waiterKinds", napi_enumerable),
                  InstanceMethod<&Commy::WaiterKind>("waiterKind", napi_enumerable),
                  InstanceMethod<&Commy::SetWaiterKind>("setWaiterKind", napi_enumerable),
              });
  if (env.IsExceptionPending()) return;
  InitKernelFromEnv(env);
  InitWaiterKindFromEnv(env);
  // Runs when this environment (main thread or worker) tears down, before the wrapped
  // objects are finalized: joins every waiter/lock thread so nothing outlives the env.
  env.AddCleanupHook([this]() { Shutdown(); });
}

Commy::~Commy() {
  Shutdown();
  // Wrapped objects finalized after us must not touch this instance.
  for (Waiter* w : waiters) w->DetachAddon();
  waiters.clear();
  for (LockOp* op : lock_ops) op->addon = nullptr;
  lock_ops.clear();
}

Commy* Commy::From(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok) return nullptr;
  return static_cast<Commy*>(data);
}

void Commy::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // Waiter::Shutdown erases itself from the set: iterate over a copy.
  std::vector<Waiter*> ws(waiters.begin(), waiters.end());
  for (Waiter* w : ws) w->Shutdown();
  // Lock threads: cancel and join; their thread-safe functions finalize (and free them).
  for (LockOp* op : lock_ops) op->Join();
}

namespace {

// Reads process.env[name] (through process.env, so a worker's own `env` option applies and
// no getenv() races with setenv()). False when unset, empty or unreadable; never leaves an
// exception pending: a failure here must not fail the load.
bool ReadProcessEnv(napi_env e, const char* name, std::string* out, napi_value* process_out) {
  napi_value global, process, penv, value;
  napi_valuetype t;
  bool ok = napi_get_global(e, &global) == napi_ok &&
            napi_get_named_property(e, global, "process", &process) == napi_ok &&
            napi_typeof(e, process, &t) == napi_ok && t == napi_object &&
            napi_get_named_property(e, process, "env", &penv) == napi_ok &&
            napi_typeof(e, penv, &t) == napi_ok && t == napi_object &&
            napi_get_named_property(e, penv, name, &value) == napi_ok &&
            napi_typeof(e, value, &t) == napi_ok && t == napi_string;
  char buf[64];
  size_t len = 0;
  ok = ok && napi_get_value_string_utf8(e, value, buf, sizeof buf, &len) == napi_ok && len > 0;
  bool pending = false;
  if (napi_is_exception_pending(e, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(e, &ignored);
    ok = false;
  }
  if (ok) {
    out->assign(buf, len);
    if (process_out) *process_out = process;
  }
  return ok;
}

void EmitWarning(napi_env e, napi_value process, const std::string& text) {
  napi_value emit, msg;
  napi_valuetype t;
  if (napi_get_named_property(e, process, "emitWarning", &emit) == napi_ok &&
      napi_typeof(e, emit, &t) == napi_ok && t == napi_function &&
      napi_create_string_utf8(e, text.c_str(), text.size(), &msg) == napi_ok) {
    napi_call_function(e, process, emit, 1, &msg, nullptr);
  }
  bool pending = false;
  if (napi_is_exception_pending(e, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(e, &ignored);
  }
}

}  // namespace

// COMMY_SIMD_KERNEL=<name> picks the default kernel at load. A name that is unknown or
// unavailable on this machine is ignored (the best kernel stays active, which activeKernel()
// shows) and reported with process.emitWarning.
void Commy::InitKernelFromEnv(Napi::Env env) {
  std::string name;
  napi_value process;
  if (!ReadProcessEnv(env, "COMMY_SIMD_KERNEL", &name, &process)) return;
  Kernel k;
  if (ParseKernel(name.c_str(), name.size(), &k) && KernelAvailable(k)) {
    kernel_ = k;
    return;
  }
  EmitWarning(env, process, "COMMY_SIMD_KERNEL=" + name + " is not available on this machine; using " +
                                KernelName(kernel_));
}

// COMMY_WAITER=thread makes new waiters use a thread even where io_uring works
// (COMMY_WAITER=io_uring is the default and falls back to a thread where unavailable).
void Commy::InitWaiterKindFromEnv(Napi::Env env) {
  std::string name;
  napi_value process;
  if (!ReadProcessEnv(env, "COMMY_WAITER", &name, &process)) return;
  if (name == "thread") {
    ring_waiters = false;
  } else if (name != "io_uring") {
    EmitWarning(env, process, "COMMY_WAITER=" + name + " is not a waiter kind (io_uring, thread); ignored");
  }
}

Napi::Value Commy::WaiterKinds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = Napi::Array::New(env);
  uint32_t i = 0;
  if (FutexRingAvailable()) list.Set(i++, Napi::String::New(env, "io_uring"));
  list.Set(i++, Napi::String::New(env, "thread"));
  return list;
}

bool Commy::UseRingWaiters() const { return ring_waiters && FutexRingAvailable(); }

Napi::Value Commy::WaiterKind(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), UseRingWaiters() ? "io_uring" : "thread");
}

Napi::Value Commy::SetWaiterKind(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  std::string name;
  if (!GetString(env, info[0], "kind", &name)) return Napi::Value();
  if (name == "thread") {
    ring_waiters = false;
  } else if (name == "io_uring") {
    if (!FutexRingAvailable()) {
      ThrowCoded(env, code::kKernelUnavailable, "io_uring futex waits are not available here");
      return Napi::Value();
    }
    ring_waiters = true;
  } else {
    ThrowCoded(env, code::kInvalidArgument, "\"kind\" must be \"io_uring\" or \"thread\"");
    return Napi::Value();
  }
  return info.Env().Undefined();
}

Napi::Value Commy::Kernels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<Kernel>& list = AvailableKernels();
  Napi::Array arr = Napi::Array::New(env, list.size());
  if (arr.IsEmpty()) return Napi::Value();
  for (size_t i = 0; i < list.size(); i++) {
    if (!arr.Set(static_cast<uint32_t>(i), Napi::String::New(env, KernelName(list[i])))) {
      return Napi::Value();
    }
  }
  return arr;
}

Napi::Value Commy::ActiveKernel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), KernelName(kernel_));
}

namespace {

// Reads a kernel name argument; throws INVALID_ARGUMENT (not a string) or
// KERNEL_UNAVAILABLE (unknown, or not usable on this CPU/build).
bool GetKernel(napi_env env, napi_value v, Kernel* out) {
  std::string name;
  if (!GetString(env, v, "kernel", &name)) return false;
  Kernel k;
  if (!ParseKernel(name.data(), name.size(), &k) || !KernelAvailable(k)) {
    ThrowCoded(env, code::kKernelUnavailable,
               "kernel \"" + name + "\" is not available on this machine");
    return false;
  }
  *out = k;
  return true;
}

}  // namespace

Napi::Value Commy::SetKernel(const Napi::CallbackInfo& info) {
  Kernel k;
  if (!GetKernel(info.Env(), info[0], &k)) return Napi::Value();
  kernel_ = k;
  return info.Env().Undefined();
}

Napi::Value Commy::Diff(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const uint8_t* a = nullptr;
  const uint8_t* b = nullptr;
  size_t na = 0, nb = 0;
  if (!GetBytes(env, info[0], "current", &a, &na)) return Napi::Value();
  if (!GetBytes(env, info[1], "shadow", &b, &nb)) return Napi::Value();
  Kernel k = kernel_;
  if (!IsUndefined(env, info[2]) && !GetKernel(env, info[2], &k)) return Napi::Value();
  if (na != nb) {
    ThrowCoded(env, code::kLengthMismatch,
               "diff inputs differ in length (" + std::to_string(na) + " vs " +
                   std::to_string(nb) + ")");
    return Napi::Value();
  }
  std::vector<double> ranges;
  commy::Diff(k, a, b, na, &ranges);

  napi_value ab, result;
  void* data = nullptr;
  const size_t bytes = ranges.size() * sizeof(double);
  if (napi_create_arraybuffer(env, bytes, &data, &ab) != napi_ok) return Napi::Value();
  if (bytes != 0) std::memcpy(data, ranges.data(), bytes);
  if (napi_create_typedarray(env, napi_float64_array, ranges.size(), ab, 0, &result) !=
      napi_ok) {
    return Napi::Value();
  }
  return Napi::Value(env, result);
}

Napi::Value Commy::Map(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  std::string path;
  bool writable = false;
  uint64_t length = 0;
  if (!GetPath(env, info[0], "path", &path)) return Napi::Value();
  if (!GetBool(env, info[1], "writable", &writable)) return Napi::Value();
  if (!GetIndex(env, info[2], "length", &length)) return Napi::Value();
  if (length == 0) {
    ThrowCoded(env, code::kInvalidArgument, "\"length\" must be at least 1");
    return Napi::Value();
  }
  MappedFile::OpenError err;
  std::shared_ptr<MappedFile> state = MappedFile::Open(path, writable, length, &err);
  if (!state) {
    if (err.too_short) {
      ThrowCoded(env, code::kFileTooShort,
                 "file '" + path + "' has " + std::to_string(err.file_size) +
                     " bytes, cannot map " + std::to_string(length),
                 path.c_str());
    } else if (err.not_regular) {
      ThrowCoded(env, code::kInvalidArgument, "'" + path + "' is not a regular file",
                 path.c_str());
    } else {
      ThrowErrno(env, err.err, err.syscall != nullptr ? err.syscall : "open", path.c_str());
    }
    return Napi::Value();
  }
  if (mapping_ctor.IsEmpty()) {
    state->Close(true);
    ThrowCoded(env, code::kClosed, "addon instance is not initialised");
    return Napi::Value();
  }
  pending_mapping = state;
  Napi::Value token = Napi::External<char>::New(env, &kConstructToken);
  Napi::Object m = mapping_ctor.New({token});
  pending_mapping.reset();
  if (m.IsEmpty()) {
    state->Close(true);
    return Napi::Value();
  }
  return m;
}

Napi::Value Commy::Noop(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

}  // namespace commy

using commy::Commy;
NODE_API_ADDON(Commy)
