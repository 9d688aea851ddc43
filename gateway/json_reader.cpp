#include "gateway/json_reader.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <system_error>

#include "gateway/utf8.hpp"

namespace sluice::gateway {
namespace {

using json = nlohmann::json;

// Recursion depth at which the reader gives up and leaves the text to nlohmann's parser,
// which keeps its own stack on the heap. MCP messages nest a handful of levels.
constexpr int kMaxDepth = 128;

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A recursive-descent reader over the whole text, building the document in place: each
// value is parsed straight into its slot (an object member, an array element), so nothing is
// built twice. Every function returns false at the first byte that does not fit.
class Reader {
 public:
  explicit Reader(std::string_view text) noexcept : s_(text) {}

  bool document(json& out) {
    skip_whitespace();
    if (!value(out, 0)) return false;
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

  bool value(json& out, int depth) {
    if (i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{':
        return object(out, depth + 1);
      case '[':
        return array(out, depth + 1);
      case '"':
        out = json(json::value_t::string);
        return string(out.get_ref<json::string_t&>());
      case 't':
        out = true;
        return literal("true");
      case 'f':
        out = false;
        return literal("false");
      case 'n':
        out = nullptr;
        return literal("null");
      default:
        return number(out);
    }
  }

  bool object(json& out, int depth) {
    if (depth > kMaxDepth) return false;
    ++i_;
    out = json(json::value_t::object);
    auto& members = out.get_ref<json::object_t&>();
    skip_whitespace();
    if (at('}')) {
      ++i_;
      return true;
    }
    for (;;) {
      if (!at('"')) return false;
      std::string key;
      if (!string(key)) return false;
      skip_whitespace();
      if (!at(':')) return false;
      ++i_;
      skip_whitespace();
      // A repeated key overwrites the earlier value, as nlohmann's parser does.
      if (!value(members[std::move(key)], depth)) return false;
      skip_whitespace();
      if (at(',')) {
        ++i_;
        skip_whitespace();
        continue;
      }
      if (!at('}')) return false;
      ++i_;
      return true;
    }
  }

  bool array(json& out, int depth) {
    if (depth > kMaxDepth) return false;
    ++i_;
    out = json(json::value_t::array);
    auto& items = out.get_ref<json::array_t&>();
    skip_whitespace();
    if (at(']')) {
      ++i_;
      return true;
    }
    for (;;) {
      if (!value(items.emplace_back(), depth)) return false;
      skip_whitespace();
      if (at(',')) {
        ++i_;
        skip_whitespace();
        continue;
      }
      if (!at(']')) return false;
      ++i_;
      return true;
    }
  }

  // The string whose opening quote is at i_, decoded and appended to `out`. Runs of bytes
  // that need no decoding are appended whole.
  bool string(std::string& out) {
    std::size_t run = ++i_;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        out.append(s_.data() + run, i_ - run);
        ++i_;
        return true;
      }
      if (c < 0x20) return false;  // control characters must be escaped
      if (c < 0x80 && c != '\\') {
        ++i_;
        continue;
      }
      if (c >= 0x80) {
        const std::size_t n = utf8_sequence(s_, i_);
        if (n == 0) return false;
        i_ += n;
        continue;
      }
      out.append(s_.data() + run, i_ - run);
      if (!escape(out)) return false;
      run = i_;
    }
    return false;  // no closing quote
  }

  // The escape sequence whose backslash is at i_.
  bool escape(std::string& out) {
    if (++i_ >= s_.size()) return false;
    const char c = s_[i_++];
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out.push_back(c);
        return true;
      case 'b':
        out.push_back('\b');
        return true;
      case 'f':
        out.push_back('\f');
        return true;
      case 'n':
        out.push_back('\n');
        return true;
      case 'r':
        out.push_back('\r');
        return true;
      case 't':
        out.push_back('\t');
        return true;
      case 'u':
        break;
      default:
        return false;
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
    append_utf8(out, cp);
    return true;
  }

  bool hex4(std::uint32_t& cp) noexcept {
    if (s_.size() - i_ < 4) return false;
    for (int k = 0; k < 4; ++k) {
      const int d = hex_digit(s_[i_++]);
      if (d < 0) return false;
      cp = (cp << 4) | static_cast<std::uint32_t>(d);
    }
    return true;
  }

  // RFC 8259's number grammar. An integer becomes an unsigned or (negative) signed 64-bit
  // value when it fits, else a double, as in nlohmann; a double out of range is left to
  // nlohmann, which refuses overflow and rounds underflow to zero.
  bool number(json& out) {
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
        if (std::from_chars(first, last, v).ec == std::errc()) {
          out = v;
          return true;
        }
      } else {
        std::uint64_t v = 0;
        if (std::from_chars(first, last, v).ec == std::errc()) {
          out = v;
          return true;
        }
      }
    }
    double d = 0;
    const auto [end, ec] = std::from_chars(first, last, d);
    if (ec != std::errc() || end != last || !std::isfinite(d)) return false;
    out = d;
    return true;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

bool read_json(std::string_view text, json& out) {
  return Reader(text).document(out);
}

json parse_json(std::string_view text) {
  json out;
  if (read_json(text, out)) return out;
  return json::parse(text, nullptr, false);
}

}  // namespace sluice::gateway
