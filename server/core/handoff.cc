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

}  // namespace meshwire
