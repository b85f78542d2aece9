#include "js_waiter.h"

#include <uv.h>

#include <cerrno>
#include <string>

#include "addon.h"
#include "args.h"
#include "errors.h"

namespace commy {

// libuv handles of an io_uring waiter. They outlive the Waiter until libuv's close callbacks
// ran (uv_close is asynchronous), so they live apart and point back through `owner`.
// An async cleanup hook holds environment teardown (and the addon's unloading, which would
// leave libuv calling into unmapped code) until both close callbacks ran.
struct RingHandles {
  uv_poll_t poll;
  uv_timer_t timer;
  Waiter* owner = nullptr;
  int open = 0;  // handles initialised and not yet closed
  napi_async_cleanup_hook_handle hook = nullptr;
};

namespace {
// Tags of completions that are not waits (their results are of no interest).
constexpr uint64_t kCancelTag = ~0ull;

void OnHandleClosed(uv_handle_t* h) {
  RingHandles* handles = static_cast<RingHandles*>(h->data);
  if (--handles->open > 0) return;
  if (handles->hook != nullptr) napi_remove_async_cleanup_hook(handles->hook);
  delete handles;
}
}  // namespace

Napi::Function Waiter::Define(Napi::Env env) {
  return DefineClass(env, "CommyWaiter",
                     {
                         InstanceMethod<&Waiter::Wait>("wait"),
                         InstanceMethod<&Waiter::Cancel>("cancel"),
                         InstanceMethod<&Waiter::Close>("close"),
                         InstanceMethod<&Waiter::Kind>("kind"),
                     });
}

Waiter::Waiter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Waiter>(info) {
  napi_env env = info.Env();
  Commy* addon = Commy::From(env);
  if (addon == nullptr || info.Length() < 1 || info.Length() > 2 || !info[0].IsExternal() ||
      info[0].As<Napi::External<char>>().Data() != &kConstructToken ||
      !addon->pending_waiter_mapping) {
    closed_ = true;
    ThrowCoded(env, code::kInvalidArgument,
               "CommyWaiter cannot be constructed directly; use mapping.waiter()");
    return;
  }
  // (mapping.waiter() checked that an onSettle argument is a function.) The waiter object holds
  // it (a read-only property), so it lives as long as the waiter; our reference is weak while
  // idle so that a cycle through it (a closure owning its waiter) stays collectable.
  if (info.Length() == 2) {
    napi_property_descriptor held = {"onSettle", nullptr, nullptr, nullptr, nullptr, info[1],
                                     napi_default, nullptr};
    if (napi_define_properties(env, info.This(), 1, &held) != napi_ok ||
        napi_create_reference(env, info[1], 0, &on_settle_) != napi_ok) {
      closed_ = true;
      on_settle_ = nullptr;
      ThrowCoded(env, code::kInvalidArgument, "could not reference onSettle");
      return;
    }
  }
  mapping_ = std::move(addon->pending_waiter_mapping);
  addon->pending_waiter_mapping.reset();
  env_ = env;
  napi_value resource_name;
  if (napi_create_string_utf8(env, "commy:waiter", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, info.This(), resource_name, &async_context_) != napi_ok) {
    async_context_ = nullptr;
    closed_ = true;
    mapping_.reset();
    ThrowCoded(env, code::kInvalidArgument, "could not create an async context");
    return;
  }

  if (addon->UseRingWaiters() && StartRing(env)) {
    addon_ = addon;
    addon_->waiters.insert(this);
    return;
  }

  bridge_ = new Bridge();
  bridge_->owner = this;
  napi_value name;
  napi_status s = napi_create_string_utf8(env, "commy:waiter", NAPI_AUTO_LENGTH, &name);
  if (s == napi_ok) {
    s = napi_create_threadsafe_function(env, nullptr, nullptr, name, /*max_queue_size=*/0,
                                        /*initial_thread_count=*/1, bridge_, FinalizeTsfn,
                                        bridge_, CallJs, &tsfn_);
  }
  if (s != napi_ok) {
    delete bridge_;
    bridge_ = nullptr;
    tsfn_ = nullptr;
    Shutdown();
    ThrowCoded(env, code::kInvalidArgument, "could not create a thread-safe function");
    return;
  }
  // Idle waiters must not keep the event loop (process / worker) alive.
  napi_unref_threadsafe_function(env, tsfn_);

  core_.reset(new WaitCore(mapping_, &Waiter::Completion, tsfn_));
  const int err = core_->Start();
  if (err != 0) {
    core_.reset();
    Shutdown();
    ThrowErrno(env, err, "pthread_create");
    return;
  }
  addon_ = addon;
  addon_->waiters.insert(this);
}

Waiter::~Waiter() {
  // GC (only possible while idle: an in-flight wait holds a strong reference) or env
  // teardown. No JS may run here.
  deferred_ = nullptr;  // at teardown a pending promise is simply abandoned
  Shutdown();
  if (on_settle_ != nullptr && env_ != nullptr) napi_delete_reference(env_, on_settle_);
  on_settle_ = nullptr;
}

// Runs on the waiter thread: hand the result to the JS thread. The TSFN outlives the
// thread: it is released only after the thread is joined (Shutdown, FinalizeTsfn).
void Waiter::Completion(void* ctx, uint64_t generation, WaitResult result) {
  auto tsfn = static_cast<napi_threadsafe_function>(ctx);
  const uintptr_t packed = (static_cast<uintptr_t>(generation) << 2) |
                           static_cast<uintptr_t>(result);
  // Non-blocking with an unbounded queue: never waits for the JS thread. Fails only
  // while the environment is shutting down, when nobody is listening anyway.
  napi_call_threadsafe_function(tsfn, reinterpret_cast<void*>(packed), napi_tsfn_nonblocking);
}

void Waiter::CallJs(napi_env env, napi_value /*js_cb*/, void* context, void* data) {
  if (env == nullptr) return;  // teardown: data is a packed integer, nothing to free
  Bridge* bridge = static_cast<Bridge*>(context);
  Waiter* self = bridge->owner;
  if (self == nullptr) return;
  const uintptr_t packed = reinterpret_cast<uintptr_t>(data);
  const uint64_t generation = static_cast<uint64_t>(packed >> 2);
  const WaitResult result = static_cast<WaitResult>(packed & 3);
  // Results of waits that were cancelled (and already settled) are dropped here.
  if (!self->in_flight_ || generation != self->gen_) return;
  self->SettleInScope(env, result);
}

void Waiter::FinalizeTsfn(napi_env /*env*/, void* data, void* /*hint*/) {
  Bridge* bridge = static_cast<Bridge*>(data);
  // Normally the Waiter released the TSFN after joining its thread (owner == nullptr).
  // If the environment finalized the TSFN first, stop the thread before the TSFN memory
  // goes away.
  if (bridge->owner != nullptr) {
    Waiter* w = bridge->owner;
    w->tsfn_ = nullptr;  // already being finalized: do not release it again
    w->bridge_ = nullptr;
    bridge->owner = nullptr;
    w->deferred_ = nullptr;
    w->in_flight_ = false;
    w->Shutdown();
  }
  delete bridge;
}

void Waiter::Settle(napi_env env, WaitResult result) {
  const bool was_in_flight = in_flight_;
  in_flight_ = false;
  napi_deferred d = deferred_;
  deferred_ = nullptr;
  if (d != nullptr) {
    napi_value s;
    if (napi_create_string_utf8(env, WaitResultName(result), NAPI_AUTO_LENGTH, &s) == napi_ok) {
      napi_resolve_deferred(env, d, s);
    }
  }
  if (ring_) {
    uv_timer_stop(&handles_->timer);
    // A timeout or cancel settles before the kernel let go of the wait: withdraw it, so
    // abandoned waits never pile up on the word.
    if (ring_wait_queued_) {
      ring_wait_queued_ = false;
      ring_->SubmitCancel(gen_, kCancelTag);
    }
    uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->poll));  // a flag, not a count
  }
  // Back to idle: let the loop exit and the object be collected (finalizers are deferred,
  // so `this` stays valid until we return).
  if (tsfn_refed_ && tsfn_ != nullptr) napi_unref_threadsafe_function(env, tsfn_);
  tsfn_refed_ = false;
  if (wrap_refed_) {
    wrap_refed_ = false;
    Unref();
  }
  // Last: onSettle may start the next wait on this waiter at once.
  if (on_settle_ != nullptr && was_in_flight) {
    napi_value fn = nullptr;
    napi_get_reference_value(env, on_settle_, &fn);  // a local handle: alive for the call
    napi_reference_unref(env, on_settle_, nullptr);   // weak again while idle
    if (fn != nullptr && result != WaitResult::kCancelled) CallOnSettle(env, fn, result);
  }
}

// A throwing onSettle is an uncaught exception, as for any callback from the event loop.
void Waiter::CallOnSettle(napi_env env, napi_value fn, WaitResult result) {
  napi_value recv;
  napi_value code;
  napi_value ignored;
  if (napi_get_undefined(env, &recv) != napi_ok ||
      napi_create_int32(env, static_cast<int32_t>(result), &code) != napi_ok) {
    return;
  }
  if (napi_call_function(env, recv, fn, 1, &code, &ignored) == napi_pending_exception) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
}

void Waiter::CancelInFlight(napi_env env) {
  if (!in_flight_) return;
  if (core_) core_->Cancel();  // (the io_uring kind withdraws its wait in Settle)
  Settle(env, WaitResult::kCancelled);
}

void Waiter::Shutdown() {
  closed_ = true;
  if (handles_ != nullptr) {
    handles_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->poll), OnHandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->timer), OnHandleClosed);
    handles_ = nullptr;
  }
  if (ring_) {
    ring_->Close();  // the kernel cancels a wait still queued
    ring_.reset();
  }
  ring_wait_queued_ = false;
  if (core_) {
    core_->Stop();  // cancel + join: the thread is gone after this
    core_.reset();
  }
  if (tsfn_ != nullptr) {
    if (bridge_ != nullptr) bridge_->owner = nullptr;
    napi_release_threadsafe_function(tsfn_, napi_tsfn_release);  // finalizer deletes bridge
    tsfn_ = nullptr;
    bridge_ = nullptr;
  }
  tsfn_refed_ = false;
  if (addon_ != nullptr) {
    addon_->waiters.erase(this);
    addon_ = nullptr;
  }
  mapping_.reset();
  if (async_context_ != nullptr && env_ != nullptr) napi_async_destroy(env_, async_context_);
  async_context_ = nullptr;
}

Napi::Value Waiter::Wait(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (closed_ || (!core_ && !ring_)) {
    ThrowCoded(env, code::kClosed, "waiter is closed");
    return Napi::Value();
  }
  if (mapping_->closed()) {
    ThrowCoded(env, code::kClosed, "mapping is closed");
    return Napi::Value();
  }
  uint64_t offset = 0;
  uint32_t expected = 0;
  int64_t timeout_ns = 0;
  if (!GetIndex(env, info[0], "offset", &offset)) return Napi::Value();
  if (!GetUint32(env, info[1], "expected", &expected)) return Napi::Value();
  if (!GetTimeout(env, info[2], "timeoutMs", &timeout_ns)) return Napi::Value();
  if (offset % 4 != 0) {
    ThrowCoded(env, code::kInvalidArgument, "\"offset\" must be a multiple of 4");
    return Napi::Value();
  }
  const size_t length = mapping_->length();
  if (offset > length || length - offset < 4) {
    ThrowCoded(env, code::kOutOfBounds, "futex word is outside the mapping");
    return Napi::Value();
  }
  if (in_flight_) {
    ThrowCoded(env, code::kBusy, "this waiter already has a wait in flight");
    return Napi::Value();
  }
  const bool callback_mode = on_settle_ != nullptr;
  napi_deferred d = nullptr;
  napi_value promise = nullptr;
  if (!callback_mode && napi_create_promise(env, &d, &promise) != napi_ok) return Napi::Value();

  // Fast paths without a thread hop. The mapping is open, hence mapped.
  const uint32_t* word = reinterpret_cast<const uint32_t*>(mapping_->data() + offset);
  const uint32_t current = __atomic_load_n(word, __ATOMIC_SEQ_CST);
  if (current != expected || timeout_ns == 0) {
    const WaitResult r = current != expected ? WaitResult::kMismatch : WaitResult::kTimeout;
    if (callback_mode) return Napi::Number::New(env, static_cast<int>(r));
    napi_value s;
    if (napi_create_string_utf8(env, WaitResultName(r), NAPI_AUTO_LENGTH, &s) == napi_ok) {
      napi_resolve_deferred(env, d, s);
    }
    return Napi::Value(env, promise);
  }

  if (ring_) {
    const int err = ring_->SubmitWait(word, expected, gen_ + 1);
    if (err != 0) {
      if (callback_mode) {
        ThrowErrno(env, err, "io_uring_enter");
        return Napi::Value();
      }
      napi_reject_deferred(env, d, MakeErrnoError(env, err, "io_uring_enter"));
      return Napi::Value(env, promise);
    }
    deferred_ = d;
    in_flight_ = true;
    gen_++;
    ring_wait_queued_ = true;
    uv_ref(reinterpret_cast<uv_handle_t*>(&handles_->poll));  // keeps the loop alive while waiting
    if (timeout_ns > 0) {
      // Whole milliseconds, rounded up: libuv timers tick in ms.
      const uint64_t ms = static_cast<uint64_t>((timeout_ns + 999999) / 1000000);
      // The loop's clock is cached per iteration; JS may have run long since.
      uv_update_time(handles_->timer.loop);
      uv_timer_start(&handles_->timer, TimerCb, ms, 0);
    }
    return Queued(env, promise);
  }

  deferred_ = d;
  in_flight_ = true;
  gen_++;
  // While a wait is in flight, keep the loop alive and this object from being collected.
  if (napi_ref_threadsafe_function(env, tsfn_) == napi_ok) tsfn_refed_ = true;
  core_->Submit(gen_, static_cast<size_t>(offset), expected, timeout_ns);
  return Queued(env, promise);
}

// A wait is in flight: keep the wrapper (and onSettle) alive until it settles. Returns the
// promise, or -1 ("queued") in callback mode.
Napi::Value Waiter::Queued(napi_env env, napi_value promise) {
  Ref();
  wrap_refed_ = true;
  if (on_settle_ == nullptr) return Napi::Value(env, promise);
  napi_reference_ref(env, on_settle_, nullptr);
  return Napi::Number::New(env, -1);
}

Napi::Value Waiter::Kind(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ring_ ? "io_uring" : "thread");
}

// ---- io_uring kind ----

bool Waiter::StartRing(napi_env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return false;
  std::unique_ptr<FutexRing> ring(new FutexRing());
  // A few entries: one wait and its cancel are the most ever queued at once.
  if (ring->Open(4) != 0) return false;
  RingHandles* handles = new RingHandles();
  handles->poll.data = handles;
  handles->timer.data = handles;
  if (napi_add_async_cleanup_hook(env, TeardownHook, handles, &handles->hook) != napi_ok ||
      uv_poll_init(loop, &handles->poll, ring->fd()) != 0) {
    if (handles->hook != nullptr) napi_remove_async_cleanup_hook(handles->hook);
    delete handles;
    return false;
  }
  handles->open = 1;
  uv_timer_init(loop, &handles->timer);  // cannot fail
  handles->open = 2;
  handles->owner = this;
  // Polled for the waiter's whole life, but only keeps the loop alive during a wait.
  uv_poll_start(&handles->poll, UV_READABLE, PollCb);
  uv_unref(reinterpret_cast<uv_handle_t*>(&handles->poll));
  uv_unref(reinterpret_cast<uv_handle_t*>(&handles->timer));
  handles_ = handles;
  ring_ = std::move(ring);
  return true;
}

// Environment teardown: close the handles now (a waiter that was already shut down is
// only waiting for its close callbacks, which remove this hook).
void Waiter::TeardownHook(napi_async_cleanup_hook_handle /*hook*/, void* arg) {
  RingHandles* handles = static_cast<RingHandles*>(arg);
  if (handles->owner != nullptr) handles->owner->Shutdown();
}

void Waiter::PollCb(uv_poll_s* handle, int /*status*/, int /*events*/) {
  RingHandles* handles = static_cast<RingHandles*>(handle->data);
  if (handles->owner != nullptr) handles->owner->OnRingReadable();
}

void Waiter::TimerCb(uv_timer_s* handle) {
  RingHandles* handles = static_cast<RingHandles*>(handle->data);
  if (handles->owner != nullptr) handles->owner->OnRingTimeout();
}

void Waiter::OnRingReadable() {
  uint64_t tag;
  int32_t res;
  bool settle = false;
  WaitResult result = WaitResult::kWoken;
  while (ring_ && ring_->Pop(&tag, &res)) {
    // A cancel's own completion, or the wait we withdrew (Settle clears in_flight_ first).
    if (tag != gen_ || !in_flight_) continue;
    ring_wait_queued_ = false;
    settle = true;
    // -EAGAIN: the word had already moved on. Other errors (-ECANCELED here would be the
    // kernel's own doing) are reported as a (spurious) wake so callers re-check the word: a wait
    // must never be left unsettled.
    result = res == -EAGAIN ? WaitResult::kMismatch : WaitResult::kWoken;
  }
  if (settle) SettleInScope(env_, result);
}

void Waiter::OnRingTimeout() {
  if (in_flight_) SettleInScope(env_, WaitResult::kTimeout);
}

// Settles from a libuv or thread-safe-function callback: inside a callback scope, so onSettle's
// or the promise's reactions (the caller's continuation) run before control returns to the
// loop, as for any Node callback.
void Waiter::SettleInScope(napi_env env, WaitResult result) {
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value self = Value();
  napi_callback_scope cs = nullptr;
  if (self == nullptr || napi_open_callback_scope(env, self, async_context_, &cs) != napi_ok) cs = nullptr;
  Settle(env, result);
  if (cs != nullptr) napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
}

Napi::Value Waiter::Cancel(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (closed_) {
    ThrowCoded(env, code::kClosed, "waiter is closed");
    return Napi::Value();
  }
  CancelInFlight(env);
  return info.Env().Undefined();
}

Napi::Value Waiter::Close(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!closed_) {
    CancelInFlight(env);
    Shutdown();
  }
  return info.Env().Undefined();
}

}  // namespace commy
