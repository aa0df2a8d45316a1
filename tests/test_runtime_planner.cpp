// The greedy arena planner: buffers alive at the same time never overlap, dead ones are reused.
#include <doctest/doctest.h>

#include <random>

#include "runtime/arena_planner.h"

using octet::BufferRequest;

TEST_CASE("arena planner reuses memory of dead buffers and keeps live ones apart") {
  // A chain a -> b -> c: a and c never live together, so they share offset 0.
  auto plan = octet::plan_arena({{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}});
  CHECK(plan.offsets[0] == plan.offsets[2]);
  CHECK(plan.offsets[0] != plan.offsets[1]);
  CHECK(plan.total_bytes == 2 * 1024);  // 1000 rounded up to the 64-byte alignment, twice
}

TEST_CASE("arena planner: random lifetimes never overlap in both time and space") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<BufferRequest> requests;
    for (int i = 0; i < 40; ++i) {
      int first = static_cast<int>(rng() % 30);
      requests.push_back({1 + rng() % 5000, first, first + static_cast<int>(rng() % 8)});
    }
    auto plan = octet::plan_arena(requests);
    size_t peak_live = 0;
    for (int step = 0; step < 40; ++step) {
      size_t live = 0;
      for (const auto& r : requests) live += r.first_step <= step && step <= r.last_step ? r.bytes : 0;
      peak_live = std::max(peak_live, live);
    }
    CHECK(plan.total_bytes >= peak_live);
    for (size_t i = 0; i < requests.size(); ++i) {
      CHECK(plan.offsets[i] % octet::kArenaAlignment == 0);
      for (size_t j = i + 1; j < requests.size(); ++j) {
        bool time = !(requests[i].last_step < requests[j].first_step || requests[j].last_step < requests[i].first_step);
        bool space = plan.offsets[i] < plan.offsets[j] + requests[j].bytes &&
                     plan.offsets[j] < plan.offsets[i] + requests[i].bytes;
        CHECK_FALSE((time && space));
      }
    }
  }
}
