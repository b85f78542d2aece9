#include "js_mapping.h"

#include <signal.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>
#include <string>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "futex.h"
#include "js_waiter.h"

namespace commy {

namespace {

// ArrayBuffer finalizer: drops the buffer's share of the mapping.
void FinalizeBuffer(napi_env /*env*/, void* /*data*/, void* hint) {
  delete static_cast<std::shared_ptr<MappedFile>*>(hint);
}

napi_value ResolvedPromise(napi_env env, napi_value value) {
  napi_deferred d;
  napi_value p;
  if (napi_create_promise(env, &d, &p) != napi_ok) return nullptr;
  if (napi_resolve_deferred(env, d, value) != napi_ok) return nullptr;
  return p;
}

napi_value RejectedPromise(napi_env env, napi_value error) {
  napi_deferred d;
  napi_value p;
  if (error == nullptr) return nullptr;
  if (napi_create_promise(env, &d, &p) != napi_ok) return nullptr;
  if (napi_reject_deferred(env, d, error) != napi_ok) return nullptr;
  return p;
}

napi_value Boolean(napi_env env, bool b) {
  napi_value v = nullptr;
  napi_get_boolean(env, b, &v);
  return v;
}

// Thread-safe function plumbing for LockOp.
void LockCallJs(napi_env env, napi_value /*js_cb*/, void* context, void* /*data*/) {
  LockOp* op = static_cast<LockOp*>(context);
  if (env == nullptr || op->deferred == nullptr) return;  // environment shutting down
  napi_deferred d = op->deferred;
  op->deferred = nullptr;
  const char* path = op->mapping->path().c_str();
  switch (op->result) {
    case 1:
      napi_resolve_deferred(env, d, Boolean(env, true));
      break;
    case 0:
      napi_resolve_deferred(env, d, Boolean(env, false));
      break;
    case MappedFile::kClosed: {
      napi_value e = MakeCodedError(env, code::kClosed, "mapping was closed while locking");
      if (e != nullptr) napi_reject_deferred(env, d, e);
      break;
    }
    default: {
      napi_value e = MakeErrnoError(env, op->result, "flock", path);
      if (e != nullptr) napi_reject_deferred(env, d, e);
      break;
    }
  }
}

void LockFinalize(napi_env /*env*/, void* data, void* /*hint*/) {
  LockOp* op = static_cast<LockOp*>(data);
  op->Join();
  if (op->addon != nullptr) op->addon->lock_ops.erase(op);
  delete op;
}

void* LockThreadMain(void* arg) {
  static_cast<LockOp*>(arg)->Run();
  return nullptr;
}

}  // namespace

// ---- LockOp ------------------------------------------------------------------------

void LockOp::Run() {
  int64_t backoff_ns = 50 * 1000;                 // 50 us, doubling ...
  const int64_t max_backoff_ns = 10 * 1000 * 1000;  // ... up to 10 ms
  for (;;) {
    const int r = mapping->Flock(operation | LOCK_NB);
    if (r == 0) {
      result = 1;
      break;
    }
    if (r != EWOULDBLOCK && r != EAGAIN) {
      result = r;  // kClosed or an errno
      break;
    }
    int64_t sleep_ns = backoff_ns;
    if (deadline_ns >= 0) {
      const int64_t now = MonotonicNs();
      if (now >= deadline_ns) {
        result = 0;
        break;
      }
      sleep_ns = std::min(sleep_ns, deadline_ns - now);
    }
    if (mapping->SleepFor(sleep_ns, &cancel) && cancel.load(std::memory_order_acquire)) {
      result = 0;
      break;
    }
    backoff_ns = std::min(backoff_ns * 2, max_backoff_ns);
  }
  if (!cancel.load(std::memory_order_acquire)) {
    napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking);
  }
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
}

void LockOp::Join() {
  if (!started || joined) return;
  cancel.store(true, std::memory_order_release);
  mapping->NotifySleepers();
  pthread_join(thread, nullptr);
  joined = true;
}

// ---- Mapping -----------------------------------------------------------------------

Napi::Function Mapping::Define(Napi::Env env) {
  return DefineClass(env, "CommyMapping",
                     {
                         InstanceAccessor<&Mapping::GetBuffer>("buffer", napi_enumerable),
                         InstanceAccessor<&Mapping::GetLength>("length", napi_enumerable),
                         InstanceAccessor<&Mapping::GetWritable>("writable", napi_enumerable),
                         InstanceAccessor<&Mapping::GetClosed>("closed", napi_enumerable),
                         InstanceMethod<&Mapping::FileSize>("fileSize"),
                         InstanceMethod<&Mapping::Sync>("sync"),
                         InstanceMethod<&Mapping::TryLock>("tryLock"),
                         InstanceMethod<&Mapping::Lock>("lock"),
                         InstanceMethod<&Mapping::Unlock>("unlock"),
                         InstanceMethod<&Mapping::Wake>("wake"),
                         InstanceMethod<&Mapping::CreateWaiter>("waiter"),
                         InstanceMethod<&Mapping::Close>("close"),
                     });
}

// Not constructible from JS: map() passes a private token and the prepared state.
Mapping::Mapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Mapping>(info) {
  napi_env env = info.Env();
  Commy* addon = Commy::From(env);
  if (addon == nullptr || info.Length() != 1 || !info[0].IsExternal() ||
      info[0].As<Napi::External<char>>().Data() != &kConstructToken ||
      !addon->pending_mapping) {
    ThrowCoded(env, code::kInvalidArgument, "CommyMapping cannot be constructed directly; use map()");
    return;
  }
  state_ = std::move(addon->pending_mapping);
  addon->pending_mapping.reset();
  length_ = state_->length();
  writable_ = state_->writable();

  // Zero-copy external ArrayBuffer over the mapped pages; its finalizer holds a share of
  // the state so the pages stay mapped for as long as any view can reach them.
  auto* hint = new std::shared_ptr<MappedFile>(state_);
  napi_value ab;
  napi_status s = napi_create_external_arraybuffer(env, state_->data(), length_, FinalizeBuffer,
                                                   hint, &ab);
  if (s != napi_ok) {
    delete hint;
    state_->Close(true);
    ThrowCoded(env, code::kInvalidArgument, "could not create an external ArrayBuffer for the mapping");
    return;
  }
  buffer_ = Napi::Reference<Napi::ArrayBuffer>::New(Napi::ArrayBuffer(env, ab), 1);
}

Mapping::~Mapping() {
  // The buffer (if still referenced from JS) and any waiter keep the mapping alive.
  buffer_.Reset();
  state_.reset();
}

Napi::Value Mapping::GetBuffer(const Napi::CallbackInfo& info) {
  if (buffer_.IsEmpty()) return info.Env().Undefined();
  return buffer_.Value();
}

Napi::Value Mapping::GetLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(length_));
}

Napi::Value Mapping::GetWritable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), writable_);
}

Napi::Value Mapping::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), closed_);
}

bool Mapping::CheckOpen(Napi::Env env) {
  if (closed_ || !state_ || state_->closed()) {
    ThrowCoded(env, code::kClosed, "mapping is closed");
    return false;
  }
  return true;
}

Napi::Value Mapping::FileSize(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!CheckOpen(info.Env())) return Napi::Value();
  uint64_t size = 0;
  const int err = state_->FileSize(&size);
  if (err != 0) {
    ThrowErrno(env, err, "fstat", state_->path().c_str());
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(size));
}

Napi::Value Mapping::Sync(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!CheckOpen(info.Env())) return Napi::Value();
  uint64_t offset = 0, len = 0;
  if (!IsUndefined(env, info[0]) && !GetIndex(env, info[0], "offset", &offset)) {
    return Napi::Value();
  }
  if (offset > length_) {
    ThrowCoded(env, code::kOutOfBounds, "sync offset is beyond the end of the mapping");
    return Napi::Value();
  }
  if (IsUndefined(env, info[1])) {
    len = length_ - offset;
  } else if (!GetIndex(env, info[1], "length", &len)) {
    return Napi::Value();
  }
  if (len > length_ - offset) {
    ThrowCoded(env, code::kOutOfBounds, "sync range is outside the mapping");
    return Napi::Value();
  }
  const int err = state_->Sync(static_cast<size_t>(offset), static_cast<size_t>(len));
  if (err != 0) {
    ThrowErrno(env, err, "msync", state_->path().c_str());
    return Napi::Value();
  }
  return info.Env().Undefined();
}

Napi::Value Mapping::TryLock(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!CheckOpen(info.Env())) return Napi::Value();
  bool exclusive = false;
  if (!GetBool(env, info[0], "exclusive", &exclusive)) return Napi::Value();
  const int r = state_->Flock((exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
  if (r == 0) return Napi::Boolean::New(env, true);
  if (r == EWOULDBLOCK || r == EAGAIN) return Napi::Boolean::New(env, false);
  if (r == MappedFile::kClosed) {
    ThrowCoded(env, code::kClosed, "mapping is closed");
  } else {
    ThrowErrno(env, r, "flock", state_->path().c_str());
  }
  return Napi::Value();
}

Napi::Value Mapping::Lock(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!CheckOpen(info.Env())) return Napi::Value();
  bool exclusive = false;
  int64_t timeout_ns = 0;
  if (!GetBool(env, info[0], "exclusive", &exclusive)) return Napi::Value();
  if (!GetTimeout(env, info[1], "timeoutMs", &timeout_ns)) return Napi::Value();
  const int operation = exclusive ? LOCK_EX : LOCK_SH;

  // Fast path on the JS thread: uncontended, or no time to wait.
  const int r = state_->Flock(operation | LOCK_NB);
  if (r == 0) return Napi::Value(env, ResolvedPromise(env, Boolean(env, true)));
  if (r == MappedFile::kClosed) {
    ThrowCoded(env, code::kClosed, "mapping is closed");
    return Napi::Value();
  }
  if (r != EWOULDBLOCK && r != EAGAIN) {
    return Napi::Value(env,
                       RejectedPromise(env, MakeErrnoError(env, r, "flock", state_->path().c_str())));
  }
  if (timeout_ns == 0) return Napi::Value(env, ResolvedPromise(env, Boolean(env, false)));

  Commy* addon = Commy::From(env);
  if (addon == nullptr) {
    ThrowCoded(env, code::kClosed, "addon instance is gone");
    return Napi::Value();
  }
  LockOp* op = new LockOp();
  op->addon = addon;
  op->mapping = state_;
  op->operation = operation;
  op->deadline_ns = timeout_ns < 0 ? -1 : MonotonicNs() + timeout_ns;
  napi_value promise;
  if (napi_create_promise(env, &op->deferred, &promise) != napi_ok) {
    delete op;
    ThrowCoded(env, code::kInvalidArgument, "could not create a promise");
    return Napi::Value();
  }
  napi_value name;
  napi_create_string_utf8(env, "commy:lock", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, op, LockFinalize, op,
                                      LockCallJs, &op->tsfn) != napi_ok) {
    napi_reject_deferred(env, op->deferred,
                         MakeCodedError(env, code::kInvalidArgument, "could not create a thread-safe function"));
    delete op;
    return Napi::Value(env, promise);
  }
  addon->lock_ops.insert(op);
  // Signals stay with the JS thread.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int err = pthread_create(&op->thread, nullptr, LockThreadMain, op);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) {
    napi_deferred d = op->deferred;
    op->deferred = nullptr;
    napi_reject_deferred(env, d, MakeErrnoError(env, err, "pthread_create"));
    // Releasing the only thread reference finalizes the TSFN, which deletes op.
    napi_release_threadsafe_function(op->tsfn, napi_tsfn_release);
    return Napi::Value(env, promise);
  }
  op->started = true;
  return Napi::Value(env, promise);
}

Napi::Value Mapping::Unlock(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!CheckOpen(info.Env())) return Napi::Value();
  const int r = state_->Flock(LOCK_UN);
  if (r == MappedFile::kClosed) {
    ThrowCoded(env, code::kClosed, "mapping is closed");
    return Napi::Value();
  }
  if (r != 0) {
    ThrowErrno(env, r, "flock", state_->path().c_str());
    return Napi::Value();
  }
  return info.Env().Undefined();
}

Napi::Value Mapping::Wake(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!CheckOpen(info.Env())) return Napi::Value();
  uint64_t offset = 0, count = 0;
  if (!GetIndex(env, info[0], "offset", &offset)) return Napi::Value();
  if (!GetCount(env, info[1], "count", &count)) return Napi::Value();
  if (offset % 4 != 0) {
    ThrowCoded(env, code::kInvalidArgument, "\"offset\" must be a multiple of 4");
    return Napi::Value();
  }
  if (offset > length_ || length_ - offset < 4) {
    ThrowCoded(env, code::kOutOfBounds, "futex word is outside the mapping");
    return Napi::Value();
  }
  const int n = count > static_cast<uint64_t>(INT_MAX) ? INT_MAX : static_cast<int>(count);
  const long r = state_->Wake(static_cast<size_t>(offset), n);
  if (r < 0) {
    ThrowErrno(env, static_cast<int>(-r), "futex");
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Value Mapping::CreateWaiter(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!CheckOpen(info.Env())) return Napi::Value();
  Commy* addon = Commy::From(env);
  if (addon == nullptr || addon->waiter_ctor.IsEmpty()) {
    ThrowCoded(env, code::kClosed, "addon instance is gone");
    return Napi::Value();
  }
  // Optional onSettle: results go to it instead of a promise per wait.
  const bool callback_mode = info.Length() > 0 && !info[0].IsUndefined();
  if (callback_mode && !info[0].IsFunction()) {
    ThrowCoded(env, code::kInvalidArgument, "\"onSettle\" must be a function");
    return Napi::Value();
  }
  addon->pending_waiter_mapping = state_;
  Napi::Value token = Napi::External<char>::New(env, &kConstructToken);
  Napi::Object w = callback_mode ? addon->waiter_ctor.New({token, info[0]})
                                 : addon->waiter_ctor.New({token});
  addon->pending_waiter_mapping.reset();
  if (w.IsEmpty()) return Napi::Value();  // constructor threw
  return w;
}

Napi::Value Mapping::Close(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (closed_ || !state_) return info.Env().Undefined();
  closed_ = true;
  // 1. Detach the buffer so existing views read as length 0 instead of faulting. If it
  //    was already detached by someone else (transferred to another realm/thread), its
  //    backing store may still be in use: then the pages stay mapped until the buffer's
  //    finalizer drops its share.
  bool detached_by_us = false;
  if (!buffer_.IsEmpty()) {
    napi_value ab = buffer_.Value();
    bool already = false;
    if (ab != nullptr && napi_is_detached_arraybuffer(env, ab, &already) == napi_ok && !already &&
        napi_detach_arraybuffer(env, ab) == napi_ok) {
      detached_by_us = true;
    }
  }
  // 2. Mark closed and close the fd (no new waits can start, lock threads stop).
  state_->Close(false);
  // 3. Cancel this mapping's in-flight waits: afterwards no thread is inside a futex call.
  Commy* addon = Commy::From(env);
  if (addon != nullptr) {
    for (Waiter* w : addon->waiters) {
      if (w->mapping() == state_.get()) w->CancelInFlight(env);
    }
  }
  // 4. Unmap now if that is safe (else when the last pin / holder goes).
  if (detached_by_us) state_->Close(true);
  return info.Env().Undefined();
}

}  // namespace commy
