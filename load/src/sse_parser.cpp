#include "load/src/sse_parser.hpp"

namespace sluice::load {

void SseParser::reset() noexcept {
  line_.clear();
  data_.clear();
  has_data_ = false;
  dispatched_ = false;
  skip_lf_ = false;
}

bool SseParser::end_line() {
  if (dispatched_) {
    data_.clear();
    dispatched_ = false;
  }
  if (line_.empty()) {
    const bool dispatch = has_data_;
    has_data_ = false;
    dispatched_ = dispatch;
    if (!dispatch) data_.clear();
    return dispatch;
  }
  std::string_view line(line_);
  if (line.front() != ':') {
    const std::size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (has_data_) data_.push_back('\n');
      data_.append(value);
      has_data_ = true;
    }
  }
  line_.clear();
  return false;
}

}  // namespace sluice::load
