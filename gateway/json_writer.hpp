#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sluice::gateway {

// Appends JSON tokens to a caller-owned buffer, so a response is serialised in place with no
// intermediate document. The caller is responsible for structure (commas, brackets); this
// class gets escaping and number formatting right. Strings are sanitised to valid UTF-8
// (invalid bytes become U+FFFD), since one bad byte from a database would otherwise make the
// whole response unparseable.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) noexcept : out_(out) {}

  JsonWriter& raw(std::string_view text) {
    out_.append(text);
    return *this;
  }
  JsonWriter& string(std::string_view text);
  // The escaped contents of a string, without the surrounding quotes.
  JsonWriter& string_body(std::string_view text);
  JsonWriter& integer(std::int64_t v);
  // Finite doubles in the shortest form that reads back exactly; NaN and infinities, which
  // JSON cannot express, as the strings "NaN", "Infinity", "-Infinity".
  JsonWriter& floating(double v);
  JsonWriter& boolean(bool v) { return raw(v ? "true" : "false"); }
  JsonWriter& null() { return raw("null"); }
  JsonWriter& base64(std::span<const std::byte> data);

  std::string& buffer() noexcept { return out_; }

 private:
  std::string& out_;
};

}  // namespace sluice::gateway
