#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "gateway/utf8.hpp"

namespace sluice::gateway {

// A strict RFC 8259 scanner that reports one JSON text as events, in document order, to a
// handler, without building anything itself. Header-only: the gateway reads messages into
// documents with it (json_reader.hpp) and the load generator judges replies with it.
//
// The handler provides, each returning false to stop the scan:
//   null(), boolean(bool), integer(std::int64_t) for negative integers,
//   unsigned_integer(std::uint64_t) for the others, floating(double) for numbers with a
//   fraction or exponent and integers beyond 64 bits (as nlohmann types them),
//   string(std::string_view), key(std::string_view), begin_object(), end_object(),
//   begin_array(), end_array().
// Strings and keys arrive decoded (escapes and surrogate pairs, checked to be well-formed
// UTF-8); the view is valid only during the call.
//
// scan() is true when the text is exactly one JSON value (surrounded by whitespace at most)
// and the handler took every event. It is false for anything else, and also for the inputs
// it does not decide and a caller may hand to a fuller parser: nesting deeper than
// `max_depth`, a byte-order mark, numbers beyond a double's range.
template <class Handler>
class JsonScanner {
 public:
  JsonScanner(std::string_view text, Handler& handler, int max_depth = 128) noexcept
      : s_(text), h_(handler), max_depth_(max_depth) {}

  bool scan() {
    skip_whitespace();
    if (!value(0)) return false;
    skip_whitespace();
    return i_ == s_.size();
  }

 private:
  bool at(char c) const noexcept { return i_ < s_.size() && s_[i_] == c; }
  bool at_digit() const noexcept { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; }

  void skip_whitespace() noexcept {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
      ++i_;
    }
  }

  bool literal(std::string_view word) noexcept {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  bool value(int depth) {
    if (i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{':
        return object(depth + 1);
      case '[':
        return array(depth + 1);
      case '"': {
        std::string_view text;
        return string(text) && h_.string(text);
      }
      case 't':
        return literal("true") && h_.boolean(true);
      case 'f':
        return literal("false") && h_.boolean(false);
      case 'n':
        return literal("null") && h_.null();
      default:
        return number();
    }
  }

  bool object(int depth) {
    if (depth > max_depth_ || !h_.begin_object()) return false;
    bool more = open('}');
    while (more) {
      std::string_view name;
      if (!at('"') || !string(name) || !h_.key(name)) return false;
      skip_whitespace();
      if (!at(':')) return false;
      ++i_;
      skip_whitespace();
      if (!value(depth) || !next(more, '}')) return false;
    }
    return h_.end_object();
  }

  bool array(int depth) {
    if (depth > max_depth_ || !h_.begin_array()) return false;
    bool more = open(']');
    while (more) {
      if (!value(depth) || !next(more, ']')) return false;
    }
    return h_.end_array();
  }

  // Past the opening bracket at i_: false for an empty container (its closing bracket
  // consumed), true when an item should follow.
  bool open(char close) {
    ++i_;
    skip_whitespace();
    if (!at(close)) return true;
    ++i_;
    return false;
  }

  // After an item: a comma (`more`, and the next item's first byte is at i_) or the closing
  // bracket; anything else is an error.
  bool next(bool& more, char close) {
    skip_whitespace();
    more = at(',');
    if (more) {
      ++i_;
      skip_whitespace();
      return true;
    }
    if (!at(close)) return false;
    ++i_;
    return true;
  }

  // The string whose opening quote is at i_: `out` views the text itself when the string
  // has no escapes, else the decoded copy in scratch_.
  bool string(std::string_view& out) {
    const std::size_t first = ++i_;
    std::size_t run = first;
    bool decoded = false;
    while (i_ < s_.size()) {
      i_ = next_special_byte(s_, i_);
      if (i_ == s_.size()) break;
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        if (decoded) {
          scratch_.append(s_.data() + run, i_ - run);
          out = scratch_;
        } else {
          out = s_.substr(first, i_ - first);
        }
        ++i_;
        return true;
      }
      if (c < 0x20) return false;  // control characters must be escaped
      if (c >= 0x80) {
        const std::size_t n = utf8_sequence(s_, i_);
        if (n == 0) return false;
        i_ += n;
        continue;
      }
      if (!decoded) {
        scratch_.clear();
        decoded = true;
      }
      scratch_.append(s_.data() + run, i_ - run);
      if (!escape()) return false;
      run = i_;
    }
    return false;  // no closing quote
  }

  // The escape sequence whose backslash is at i_, decoded onto scratch_.
  bool escape() {
    if (++i_ >= s_.size()) return false;
    const char c = s_[i_++];
    if (c != 'u') {
      // The one-character escapes, and what each stands for.
      constexpr std::string_view kEscaped = "\"\\/bfnrt";
      constexpr std::string_view kMeant = "\"\\/\b\f\n\r\t";
      const std::size_t k = kEscaped.find(c);
      if (k == std::string_view::npos) return false;
      scratch_.push_back(kMeant[k]);
      return true;
    }
    std::uint32_t cp = 0;
    if (!hex4(cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate on its own
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      // A high surrogate must be followed by an escaped low one.
      std::uint32_t low = 0;
      if (!literal("\\u") || !hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(cp);
    return true;
  }

  bool hex4(std::uint32_t& cp) noexcept {
    if (s_.size() - i_ < 4) return false;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      std::uint32_t d = 0;
      if (c >= '0' && c <= '9') {
        d = static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
      cp = (cp << 4) | d;
    }
    return true;
  }

  void append_utf8(std::uint32_t cp) {
    auto put = [this](std::uint32_t byte) { scratch_.push_back(static_cast<char>(byte)); };
    if (cp < 0x80) {
      put(cp);
    } else if (cp < 0x800) {
      put(0xC0 | (cp >> 6));
      put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      put(0xE0 | (cp >> 12));
      put(0x80 | ((cp >> 6) & 0x3F));
      put(0x80 | (cp & 0x3F));
    } else {
      put(0xF0 | (cp >> 18));
      put(0x80 | ((cp >> 12) & 0x3F));
      put(0x80 | ((cp >> 6) & 0x3F));
      put(0x80 | (cp & 0x3F));
    }
  }

  // RFC 8259's number grammar, typed as nlohmann types it.
  bool number() {
    const std::size_t start = i_;
    const bool negative = at('-');
    if (negative) ++i_;
    if (at('0')) {
      ++i_;
    } else if (at_digit()) {
      while (at_digit()) ++i_;
    } else {
      return false;
    }
    bool integral = true;
    if (at('.')) {
      integral = false;
      ++i_;
      if (!at_digit()) return false;
      while (at_digit()) ++i_;
    }
    if (at('e') || at('E')) {
      integral = false;
      ++i_;
      if (at('+') || at('-')) ++i_;
      if (!at_digit()) return false;
      while (at_digit()) ++i_;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + i_;
    if (integral) {
      if (negative) {
        std::int64_t v = 0;
        if (std::from_chars(first, last, v).ec == std::errc()) return h_.integer(v);
      } else {
        std::uint64_t v = 0;
        if (std::from_chars(first, last, v).ec == std::errc()) return h_.unsigned_integer(v);
      }
    }
    double d = 0;
    const auto [end, ec] = std::from_chars(first, last, d);
    if (ec != std::errc() || end != last || !std::isfinite(d)) return false;
    return h_.floating(d);
  }

  std::string_view s_;
  std::size_t i_ = 0;
  Handler& h_;
  int max_depth_;
  std::string scratch_;  // the decoded form of a string with escapes
};

}  // namespace sluice::gateway
