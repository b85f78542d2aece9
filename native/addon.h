// Per-environment (main thread or worker) addon state. Loaded with NODE_API_ADDON, so each
// environment gets its own instance; a cleanup hook stops every native thread this
// environment started before it goes away.
#ifndef COMMY_NATIVE_ADDON_H_
#define COMMY_NATIVE_ADDON_H_

#include <napi.h>

#include <memory>
#include <set>

#include "diff.h"
#include "mapping.h"

namespace commy {

// Private token passed to the wrapped classes' constructors by map() / waiter().
extern char kConstructToken;

class Waiter;
struct LockOp;

class Commy : public Napi::Addon<Commy> {
 public:
  Commy(Napi::Env env, Napi::Object exports);
  ~Commy();

  static Commy* From(napi_env env);

  // Constructors of the wrapped classes (not exported: JS cannot construct them directly).
  Napi::FunctionReference mapping_ctor;
  Napi::FunctionReference waiter_ctor;
  // Set just before calling a constructor from C++; the constructor takes (and clears) it.
  std::shared_ptr<MappedFile> pending_mapping;
  std::shared_ptr<MappedFile> pending_waiter_mapping;
  // Live native threads of this environment.
  std::set<Waiter*> waiters;
  std::set<LockOp*> lock_ops;
  // New waiters use io_uring when the kernel allows (else a thread); setWaiterKind("thread")
  // or COMMY_WAITER=thread turns it off for this environment.
  bool ring_waiters = true;
  // The kind new waiters get: io_uring when chosen and usable here.
  bool UseRingWaiters() const;

  // Stops and joins every thread (no JS is called). Run by the env cleanup hook.
  void Shutdown();

 private:
  Napi::Value Kernels(const Napi::CallbackInfo& info);
  Napi::Value ActiveKernel(const Napi::CallbackInfo& info);
  Napi::Value SetKernel(const Napi::CallbackInfo& info);
  Napi::Value Diff(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value Noop(const Napi::CallbackInfo& info);
  Napi::Value WaiterKinds(const Napi::CallbackInfo& info);
  Napi::Value WaiterKind(const Napi::CallbackInfo& info);
  Napi::Value SetWaiterKind(const Napi::CallbackInfo& info);
  void InitKernelFromEnv(Napi::Env env);
  void InitWaiterKindFromEnv(Napi::Env env);

  Kernel kernel_;
  bool shut_down_ = false;
};

}  // namespace commy

#endif  // COMMY_NATIVE_ADDON_H_
