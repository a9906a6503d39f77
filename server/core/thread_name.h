// Names the calling thread (Linux shows at most 15 characters), so `top -H`,
// `ps -L` and perf tell the relay's threads apart.
#pragma once

#include <pthread.h>

namespace meshwire {

inline void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace meshwire
