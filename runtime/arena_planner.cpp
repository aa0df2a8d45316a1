#include "runtime/arena_planner.h"

#include <algorithm>
#include <numeric>

namespace octet {

static size_t align_up(size_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

ArenaPlan plan_arena(const std::vector<BufferRequest>& requests) {
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by earlier start keep the plan deterministic.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (requests[a].bytes != requests[b].bytes) return requests[a].bytes > requests[b].bytes;
    return requests[a].first_step < requests[b].first_step;
  });
  ArenaPlan plan;
  plan.offsets.assign(requests.size(), 0);
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferRequest& r = requests[i];
    // Intervals taken by live-overlapping buffers, sorted by offset; take the first gap that fits.
    std::vector<std::pair<size_t, size_t>> taken;
    for (size_t j : placed) {
      const BufferRequest& o = requests[j];
      if (o.last_step < r.first_step || r.last_step < o.first_step) continue;
      taken.emplace_back(plan.offsets[j], plan.offsets[j] + align_up(o.bytes));
    }
    std::sort(taken.begin(), taken.end());
    size_t offset = 0;
    for (const auto& t : taken) {
      if (offset + align_up(r.bytes) <= t.first) break;
      offset = std::max(offset, t.second);
    }
    plan.offsets[i] = offset;
    plan.total_bytes = std::max(plan.total_bytes, offset + align_up(r.bytes));
    placed.push_back(i);
  }
  return plan;
}

}  // namespace octet
