// JS wrapper of a WaitCore: NativeWaiter in src/native/Binding.ts.
#ifndef COMMY_NATIVE_JS_WAITER_H_
#define COMMY_NATIVE_JS_WAITER_H_

#include <napi.h>

#include <memory>

#include "mapping.h"
#include "waiter.h"

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
  void Settle(napi_env env, WaitResult result);
  static void Completion(void* ctx, uint64_t generation, WaitResult result);
  static void CallJs(napi_env env, napi_value js_cb, void* context, void* data);
  static void FinalizeTsfn(napi_env env, void* data, void* hint);

  Commy* addon_ = nullptr;
  std::shared_ptr<MappedFile> mapping_;
  std::unique_ptr<WaitCore> core_;
  napi_threadsafe_function tsfn_ = nullptr;
  Bridge* bridge_ = nullptr;
  napi_deferred deferred_ = nullptr;
  uint64_t gen_ = 0;
  bool closed_ = false;
  bool tsfn_refed_ = false;
  bool wrap_refed_ = false;
};

}  // namespace commy

#endif  // COMMY_NATIVE_JS_WAITER_H_
