#include "server/core/handoff.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace meshwire {
namespace {

struct Gathered {
  void* target;
  HandOffBatch::Flush flush;
  std::vector<HandOffBatch::Work> work;
};

thread_local bool t_open = false;
thread_local std::vector<Gathered> t_gathered;  // by target, in order of first use

}  // namespace

HandOffBatch::HandOffBatch() : outer_(!t_open) { t_open = true; }

HandOffBatch::~HandOffBatch() {
  if (!outer_) return;
  t_open = false;
  std::vector<Gathered> gathered;
  gathered.swap(t_gathered);
  for (Gathered& g : gathered) {
    try {
      g.flush(g.target, std::move(g.work));
    } catch (const std::exception& e) {
      spdlog::error("handing over completions: {}", e.what());
    }
  }
}

bool HandOffBatch::Open() { return t_open; }

void HandOffBatch::Add(void* target, Flush flush, Work work) {
  for (Gathered& g : t_gathered) {
    if (g.target == target) {
      g.work.push_back(std::move(work));
      return;
    }
  }
  t_gathered.push_back({target, flush, {}});
  t_gathered.back().work.push_back(std::move(work));
}

namespace {

struct Deferred {
  void* target;
  LoopTail::Fn fn;
};

thread_local bool t_tail = false;
thread_local std::vector<Deferred> t_deferred;

}  // namespace

void LoopTail::Enable() { t_tail = true; }

void LoopTail::Disable() {
  Run();
  t_tail = false;
}

bool LoopTail::Enabled() { return t_tail; }

void LoopTail::Defer(void* target, Fn fn) {
  for (const Deferred& d : t_deferred) {
    if (d.target == target && d.fn == fn) return;
  }
  t_deferred.push_back({target, fn});
}

void LoopTail::Run() {
  while (!t_deferred.empty()) {
    std::vector<Deferred> now;
    now.swap(t_deferred);
    for (const Deferred& d : now) {
      try {
        d.fn(d.target);
      } catch (const std::exception& e) {
        spdlog::error("running an event loop's tail: {}", e.what());
      }
    }
  }
}

}  // namespace meshwire
