#include "gateway/json_writer.hpp"

#include <array>
#include <charconv>
#include <cmath>

#include "gateway/utf8.hpp"

namespace sluice::gateway {
namespace {

constexpr std::string_view kHex = "0123456789abcdef";

}  // namespace

JsonWriter& JsonWriter::string(std::string_view text) {
  out_.push_back('"');
  string_body(text);
  out_.push_back('"');
  return *this;
}

JsonWriter& JsonWriter::string_body(std::string_view s) {
  std::size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (std::size_t i = next_special_byte(s, 0); i < s.size(); i = next_special_byte(s, i)) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(s, i);
      if (n > 0) {
        i += n;
        continue;
      }
      out_.append(s.data() + run, i - run);
      out_.append("\xEF\xBF\xBD");  // U+FFFD
      run = ++i;
      continue;
    }
    out_.append(s.data() + run, i - run);
    switch (c) {
      case '"':
        out_.append("\\\"");
        break;
      case '\\':
        out_.append("\\\\");
        break;
      case '\n':
        out_.append("\\n");
        break;
      case '\r':
        out_.append("\\r");
        break;
      case '\t':
        out_.append("\\t");
        break;
      case '\b':
        out_.append("\\b");
        break;
      case '\f':
        out_.append("\\f");
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out_.append(esc, 6);
      }
    }
    run = ++i;
  }
  out_.append(s.data() + run, s.size() - run);
  return *this;
}

JsonWriter& JsonWriter::integer(std::int64_t v) {
  std::array<char, 24> buf;
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out_.append(buf.data(), end);
  return *this;
}

JsonWriter& JsonWriter::floating(double v) {
  if (std::isnan(v)) return raw("\"NaN\"");
  if (std::isinf(v)) return raw(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  std::array<char, 32> buf;
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out_.append(buf.data(), end);
  return *this;
}

JsonWriter& JsonWriter::base64(std::span<const std::byte> data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out_.push_back('"');
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const auto n = (std::to_integer<unsigned>(data[i]) << 16) |
                   (std::to_integer<unsigned>(data[i + 1]) << 8) |
                   std::to_integer<unsigned>(data[i + 2]);
    const char quad[4] = {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63],
                          kAlphabet[(n >> 6) & 63], kAlphabet[n & 63]};
    out_.append(quad, 4);
  }
  if (i < data.size()) {
    unsigned n = std::to_integer<unsigned>(data[i]) << 16;
    if (i + 1 < data.size()) n |= std::to_integer<unsigned>(data[i + 1]) << 8;
    out_.push_back(kAlphabet[(n >> 18) & 63]);
    out_.push_back(kAlphabet[(n >> 12) & 63]);
    out_.push_back(i + 1 < data.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out_.push_back('=');
  }
  out_.push_back('"');
  return *this;
}

}  // namespace sluice::gateway
