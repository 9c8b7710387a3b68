// Names the calling thread (Linux keeps 15 characters), so top, perf and
// /proc/PID/task/*/comm tell the engine, HTTP and worker threads apart; the
// front-end overhead report sums CPU time per thread name.
#pragma once

#include <pthread.h>

namespace kaon {

inline void SetCurrentThreadName(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace kaon
