#pragma once

#include <string>
#include <string_view>

namespace sluice::load {

// Incremental parser for a text/event-stream body (the HTML Living Standard's rules): lines
// end with CRLF, LF or CR; "data:" lines of one event join with "\n"; a blank line dispatches
// the event; comments (":") and the id and retry fields are skipped. Chunks may split lines and
// line endings anywhere. Its buffers are reused, so a long stream does not allocate per event.
class SseParser {
 public:
  // Feeds a chunk; calls on_event(std::string_view data) for each complete event that has data.
  // If on_event returns true, parsing stops there and feed returns true (the rest of the chunk
  // is dropped: the caller has what it waited for).
  template <class F>
  bool feed(std::string_view chunk, F&& on_event) {
    for (char c : chunk) {
      if (skip_lf_) {
        skip_lf_ = false;
        if (c == '\n') continue;
      }
      if (c == '\r' || c == '\n') {
        skip_lf_ = c == '\r';
        if (end_line() && on_event(std::string_view(data_))) {
          data_.clear();
          return true;
        }
        continue;
      }
      line_.push_back(c);
    }
    return false;
  }

  void reset() noexcept;

 private:
  // Ends the current line; true when it dispatches an event (its data is in data_).
  bool end_line();

  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool dispatched_ = false;  // data_ holds an event already handed out
  bool skip_lf_ = false;
};

}  // namespace sluice::load
