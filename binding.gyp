{
  "targets": [
    {
      "target_name": "commy",
      "sources": [
        "native/commy.cc",
        "native/args.cc",
        "native/errors.cc",
        "native/js_mapping.cc",
        "native/js_waiter.cc",
        "native/mapping.cc",
        "native/waiter.cc",
        "native/futex.cc",
        "native/uring.cc",
        "native/cpu.cc",
        "native/diff.cc",
        "native/diff_x86.cc",
        "native/diff_neon.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fexceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fexceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20"],
      "cflags": ["-O3", "-fvisibility=hidden", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fno-exceptions"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "NO",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "GCC_OPTIMIZATION_LEVEL": "3"
      }
    }
  ]
}
