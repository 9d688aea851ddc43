#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sluice::gateway {

// Length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF) that starts at s[i], or 0 if none does. ASCII is not a sequence
// here: callers test for it first.
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto c = static_cast<unsigned char>(s[i]);
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
    if (c == 0xED && c1 > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
    if (c == 0xF4 && c1 > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// The first index at or after `i` whose byte a JSON string cannot hold as it is: the quote,
// the backslash, a control character (below 0x20) or the start of a multi-byte sequence
// (0x80 and above); s.size() if none. Such bytes are rare in the strings Sluice reads and
// writes, so it tests eight at a time: in a word, a byte is flagged by the high bit of its
// lane, and a borrow can flag a lane above a flagged one but never below, so the lowest flag
// is exact, and on a little-endian machine it is the lowest-addressed byte.
inline std::size_t next_special_byte(std::string_view s, std::size_t i) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
    for (; s.size() - i >= 8; i += 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, s.data() + i, 8);
      const std::uint64_t quote = w ^ (kOnes * '"');
      const std::uint64_t backslash = w ^ (kOnes * '\\');
      const std::uint64_t flags = (((quote - kOnes) & ~quote) |          // a quote
                                   ((backslash - kOnes) & ~backslash) |  // a backslash
                                   ((w - kOnes * 0x20) & ~w) |           // below 0x20
                                   w) &                                  // 0x80 and above
                                  kHigh;
      if (flags != 0) return i + static_cast<std::size_t>(std::countr_zero(flags)) / 8;
    }
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return i;
  }
  return i;
}

}  // namespace sluice::gateway
