// Greedy arena planner (as in TensorFlow Lite Micro): every activation buffer gets an offset in one
// block so that buffers alive at the same time never overlap. Buffers are placed largest first, each at
// the lowest 64-byte-aligned offset that does not collide with an already placed buffer whose lifetime
// overlaps.
#pragma once

#include <cstddef>
#include <vector>

namespace octet {

struct BufferRequest {
  size_t bytes = 0;
  int first_step = 0;  // step writing it (or -1 for buffers filled before the first step)
  int last_step = 0;   // last step reading it (inclusive)
};

struct ArenaPlan {
  std::vector<size_t> offsets;  // one per request
  size_t total_bytes = 0;
};

constexpr size_t kArenaAlignment = 64;

ArenaPlan plan_arena(const std::vector<BufferRequest>& requests);

}  // namespace octet
