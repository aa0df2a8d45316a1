// Progress of long work on stderr, as octet's tools and samples print it: on a terminal one line updated in place
// ('\r'); otherwise (a log file, a pipe, CI) a line at each tenth of the work and at the end, so that a log of an
// evaluation over 50000 images stays a few readable lines instead of one 30 KB line of carriage returns.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace octet {

class ProgressLine {
 public:
  ProgressLine() : terminal_(isatty(fileno(stderr)) != 0) {}

  // "label: done/total"; `label` may change between calls (a new stage starts a new line).
  void update(const std::string& label, size_t done, size_t total) {
    if (label != label_ || done < last_done_) {  // a new stage, or the same one again from the start
      if (open_) std::fputc('\n', stderr);
      label_ = label, open_ = false, next_tenth_ = 1;
    }
    last_done_ = done;
    if (terminal_) {
      std::fprintf(stderr, "\r%s: %zu/%zu", label.c_str(), done, total);
      open_ = done != total;
      if (!open_) std::fputc('\n', stderr);
    } else if (done == total || (total >= 10 && done * 10 >= next_tenth_ * total)) {
      std::fprintf(stderr, "%s: %zu/%zu\n", label.c_str(), done, total);
      while (next_tenth_ * total <= done * 10) ++next_tenth_;
    }
    std::fflush(stderr);
  }
  // Ends a line left open on a terminal (work stopped before its total).
  void finish() {
    if (open_) std::fputc('\n', stderr);
    open_ = false;
  }
  ~ProgressLine() { finish(); }

 private:
  bool terminal_;
  bool open_ = false;
  std::string label_;
  size_t next_tenth_ = 1, last_done_ = 0;
};

}  // namespace octet
