// NativeWaiter in src/native/Binding.ts. Two implementations behind one object:
// - "io_uring": the JS thread submits FUTEX_WAIT to its own ring and libuv polls the ring's
//   fd, so a wake reaches the event loop directly (one cross-process wake-up);
// - "thread": a WaitCore thread blocks in FUTEX_WAIT and hands the result to the JS thread
//   through a thread-safe function (two wake-ups: the thread, then the loop).
// The kind is chosen per waiter at creation: io_uring when FutexRingAvailable() and not
// switched off (setWaiterKind / COMMY_WAITER=thread).
// Results reach JS one of two ways, fixed at creation: a promise per wait, or (given an
// onSettle function) a call of onSettle(code) from the event loop, which allocates nothing per
// wait: the watcher's wake path.
#ifndef COMMY_NATIVE_JS_WAITER_H_
#define COMMY_NATIVE_JS_WAITER_H_

#include <napi.h>

#include <memory>

#include "mapping.h"
#include "uring.h"
#include "waiter.h"

struct uv_poll_s;
struct uv_timer_s;

namespace commy {

class Commy;

class Waiter : public Napi::ObjectWrap<Waiter> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Waiter(const Napi::CallbackInfo& info);
  ~Waiter() override;

  const MappedFile* mapping() const { return mapping_.get(); }
  // Mapping.close(): settle an in-flight wait with "cancelled".
  void CancelInFlight(napi_env env);
  // Stop + join the thread and release the thread-safe function. Calls no JS, so it is
  // usable from the destructor and the env cleanup hook. Idempotent.
  void Shutdown();
  // The addon instance is going away before us.
  void DetachAddon() { addon_ = nullptr; }

 private:
  // Shared with the thread-safe function, which owns it (deleted in its finalizer);
  // `owner` is cleared by whichever of the two goes first.
  struct Bridge {
    Waiter* owner = nullptr;
  };

  Napi::Value Wait(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Kind(const Napi::CallbackInfo& info);
  // Ends the in-flight wait: resolves its promise, or (callback mode) calls onSettle unless the
  // wait was withdrawn (kCancelled). Callback mode must be inside a callback scope.
  void Settle(napi_env env, WaitResult result);
  // Settle from a libuv or thread-safe-function callback: handle and callback scope around it.
  void SettleInScope(napi_env env, WaitResult result);
  void CallOnSettle(napi_env env, napi_value fn, WaitResult result);
  Napi::Value Queued(napi_env env, napi_value promise);
  static void Completion(void* ctx, uint64_t generation, WaitResult result);
  static void CallJs(napi_env env, napi_value js_cb, void* context, void* data);
  static void FinalizeTsfn(napi_env env, void* data, void* hint);
  // io_uring kind
  bool StartRing(napi_env env);
  void OnRingReadable();
  void OnRingTimeout();
  static void PollCb(uv_poll_s* handle, int status, int events);
  static void TimerCb(uv_timer_s* handle);
  static void TeardownHook(napi_async_cleanup_hook_handle hook, void* arg);

  Commy* addon_ = nullptr;
  std::shared_ptr<MappedFile> mapping_;
  std::unique_ptr<WaitCore> core_;
  napi_threadsafe_function tsfn_ = nullptr;
  Bridge* bridge_ = nullptr;
  napi_deferred deferred_ = nullptr;
  // Callback mode: onSettle, weak while idle and strong while a wait is in flight (like the
  // wrapper itself), so a waiter and the closure that owns it can be collected together.
  napi_ref on_settle_ = nullptr;
  bool in_flight_ = false;
  // io_uring kind (ring_ set): the ring and libuv handles over its fd (owned by RingHandles,
  // freed by their close callbacks). Both kinds: the async context completions run in.
  std::unique_ptr<FutexRing> ring_;
  struct RingHandles* handles_ = nullptr;
  napi_env env_ = nullptr;
  napi_async_context async_context_ = nullptr;
  napi_ref self_ref_ = nullptr;
  bool ring_wait_queued_ = false;  // the kernel still holds our FUTEX_WAIT (gen_)
  uint64_t gen_ = 0;
  bool closed_ = false;
  bool tsfn_refed_ = false;
  bool wrap_refed_ = false;
};

}  // namespace commy

#endif  // COMMY_NATIVE_JS_WAITER_H_
