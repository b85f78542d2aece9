// JS wrapper of a MappedFile: NativeMapping in src/native/Binding.ts.
#ifndef COMMY_NATIVE_JS_MAPPING_H_
#define COMMY_NATIVE_JS_MAPPING_H_

#include <napi.h>

#include <atomic>
#include <memory>

#include "mapping.h"

namespace commy {

class Commy;

class Mapping : public Napi::ObjectWrap<Mapping> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Mapping(const Napi::CallbackInfo& info);
  ~Mapping() override;

 private:
  Napi::Value GetBuffer(const Napi::CallbackInfo& info);
  Napi::Value GetLength(const Napi::CallbackInfo& info);
  Napi::Value GetWritable(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value FileSize(const Napi::CallbackInfo& info);
  Napi::Value Sync(const Napi::CallbackInfo& info);
  Napi::Value TryLock(const Napi::CallbackInfo& info);
  Napi::Value Lock(const Napi::CallbackInfo& info);
  Napi::Value Unlock(const Napi::CallbackInfo& info);
  Napi::Value Wake(const Napi::CallbackInfo& info);
  Napi::Value CreateWaiter(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  bool CheckOpen(Napi::Env env);

  std::shared_ptr<MappedFile> state_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;  // strong while this object lives
  size_t length_ = 0;
  bool writable_ = false;
  bool closed_ = false;
};

// One lock(exclusive, timeoutMs) call that could not be satisfied immediately: polls
// flock(LOCK_NB) with exponential backoff on its own thread (never the libuv pool, which
// long lock waits would starve) and settles the promise through a thread-safe function.
struct LockOp {
  Commy* addon = nullptr;
  std::shared_ptr<MappedFile> mapping;
  int operation = 0;          // LOCK_SH or LOCK_EX
  int64_t deadline_ns = -1;   // CLOCK_MONOTONIC; -1 = none
  napi_deferred deferred = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  pthread_t thread{};
  bool started = false;
  bool joined = false;
  std::atomic<bool> cancel{false};
  int result = 0;  // 1 acquired, 0 timed out, MappedFile::kClosed, or an errno

  void Run();
  void Join();  // cancel + join; idempotent; JS thread only
};

}  // namespace commy

#endif  // COMMY_NATIVE_JS_MAPPING_H_
