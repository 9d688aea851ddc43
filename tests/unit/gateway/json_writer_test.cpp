#include "gateway/json_writer.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace sluice::gateway {
namespace {

using json = nlohmann::json;

std::string str(std::string_view s) {
  std::string out;
  JsonWriter(out).string(s);
  return out;
}

std::string body(std::string_view s) {
  std::string out;
  JsonWriter(out).string_body(s);
  return out;
}

std::string integer(std::int64_t v) {
  std::string out;
  JsonWriter(out).integer(v);
  return out;
}

std::string floating(double v) {
  std::string out;
  JsonWriter(out).floating(v);
  return out;
}

std::string base64(std::string_view s) {
  std::vector<std::byte> data;
  for (char c : s) data.push_back(static_cast<std::byte>(c));
  std::string out;
  JsonWriter(out).base64(data);
  return out;
}

// The string a JSON parser reads back from what the writer produced.
std::string parsed(std::string_view s) {
  return json::parse(str(s)).get<std::string>();
}

const std::string kReplacement = "\xEF\xBF\xBD";

TEST(JsonWriterTest, AppendsToTheCallersBufferAndChains) {
  std::string out = "prefix:";
  JsonWriter w(out);
  w.raw("[").string("a").raw(",").integer(1).raw(",").boolean(true).raw(",").boolean(false);
  w.raw(",").null().raw("]");
  EXPECT_EQ(out, R"(prefix:["a",1,true,false,null])");
  EXPECT_EQ(&w.buffer(), &out);
}

TEST(JsonWriterTest, EscapesQuotesBackslashesAndNamedControls) {
  EXPECT_EQ(str(""), R"("")");
  EXPECT_EQ(str("plain text"), R"("plain text")");
  EXPECT_EQ(str("\""), R"("\"")");
  EXPECT_EQ(str("\\"), R"("\\")");
  EXPECT_EQ(str("\n"), R"("\n")");
  EXPECT_EQ(str("\r"), R"("\r")");
  EXPECT_EQ(str("\t"), R"("\t")");
  EXPECT_EQ(str("\b"), R"("\b")");
  EXPECT_EQ(str("\f"), R"("\f")");
  EXPECT_EQ(str("a\"b\\c\nd"), R"("a\"b\\c\nd")");
  EXPECT_EQ(str("/"), R"("/")") << "a solidus needs no escape";
}

TEST(JsonWriterTest, EscapesEveryOtherControlCharacterAsLowercaseU00XX) {
  EXPECT_EQ(str(std::string_view("\0", 1)), R"("\u0000")");
  EXPECT_EQ(str("\x01"), R"("\u0001")");
  EXPECT_EQ(str("\x0b"), R"("\u000b")");
  EXPECT_EQ(str("\x1f"), R"("\u001f")");
  EXPECT_EQ(str("\x1b[0m"), R"("\u001b[0m")");
  for (int c = 0; c < 0x20; ++c) {
    const std::string in(1, static_cast<char>(c));
    EXPECT_EQ(json::parse(str(in)).get<std::string>(), in) << "control " << c;
  }
}

TEST(JsonWriterTest, LeavesPrintableAsciiAndDelUnescaped) {
  std::string all;
  for (int c = 0x20; c < 0x80; ++c) {
    if (c != '"' && c != '\\') all.push_back(static_cast<char>(c));
  }
  EXPECT_EQ(str(all), "\"" + all + "\"");
}

TEST(JsonWriterTest, StringBodyOmitsTheQuotes) {
  EXPECT_EQ(body("a\"b"), R"(a\"b)");
  EXPECT_EQ(body(""), "");
  std::string out = "\"x";
  JsonWriter(out).string_body("\t").raw("\"");
  EXPECT_EQ(out, R"("x\t")");
}

TEST(JsonWriterTest, KeepsValidUtf8OfEveryLength) {
  const std::string two = "\xC3\xA9";                   // U+00E9
  const std::string three = "\xE2\x82\xAC";             // U+20AC
  const std::string four = "\xF0\x9F\x98\x80";          // U+1F600
  const std::string lowest4 = "\xF0\x90\x80\x80";       // U+10000
  const std::string highest = "\xF4\x8F\xBF\xBF";       // U+10FFFF
  const std::string lowest2 = "\xC2\x80";               // U+0080
  const std::string lowest3 = "\xE0\xA0\x80";           // U+0800
  const std::string below_surrogates = "\xED\x9F\xBF";  // U+D7FF
  const std::string above_surrogates = "\xEE\x80\x80";  // U+E000
  const std::string bmp_end = "\xEF\xBF\xBF";           // U+FFFF
  for (const std::string& s : {two, three, four, lowest4, highest, lowest2, lowest3,
                               below_surrogates, above_surrogates, bmp_end}) {
    EXPECT_EQ(str(s), "\"" + s + "\"");
    EXPECT_EQ(parsed(s), s);
  }
  EXPECT_EQ(parsed("caf\xC3\xA9 \xE2\x82\xAC 5 \xF0\x9F\x98\x80!"),
            "caf\xC3\xA9 \xE2\x82\xAC 5 \xF0\x9F\x98\x80!");
}

// Each byte that does not start a valid sequence becomes one U+FFFD; the rest is kept.
TEST(JsonWriterTest, ReplacesInvalidUtf8BytewiseWithReplacementCharacter) {
  struct Case {
    const char* what;
    std::string in;
    std::string out;
  };
  const std::vector<Case> cases = {
      {"lone continuation byte", "a\x80z", "a" + kReplacement + "z"},
      {"0xFF", "\xFF", kReplacement},
      {"0xFE", "\xFE", kReplacement},
      {"overlong 2-byte NUL (C0 80)", "\xC0\x80", kReplacement + kReplacement},
      {"overlong 2-byte (C1 BF)", "\xC1\xBF", kReplacement + kReplacement},
      {"overlong 3-byte (E0 80 AF)", "\xE0\x80\xAF", kReplacement + kReplacement + kReplacement},
      {"overlong 3-byte (E0 9F BF)", "\xE0\x9F\xBF", kReplacement + kReplacement + kReplacement},
      {"overlong 4-byte (F0 8F BF BF)", "\xF0\x8F\xBF\xBF",
       kReplacement + kReplacement + kReplacement + kReplacement},
      {"high surrogate U+D800", "\xED\xA0\x80", kReplacement + kReplacement + kReplacement},
      {"low surrogate U+DFFF", "\xED\xBF\xBF", kReplacement + kReplacement + kReplacement},
      {"above U+10FFFF (F4 90 80 80)", "\xF4\x90\x80\x80",
       kReplacement + kReplacement + kReplacement + kReplacement},
      {"F5 lead byte", "\xF5\x80\x80\x80",
       kReplacement + kReplacement + kReplacement + kReplacement},
      {"truncated 2-byte at end", "ab\xC3", "ab" + kReplacement},
      {"truncated 3-byte at end", "\xE2\x82", kReplacement + kReplacement},
      {"truncated 4-byte at end", "\xF0\x9F\x98", kReplacement + kReplacement + kReplacement},
      {"truncated 3-byte before ASCII", "\xE2\x82x", kReplacement + kReplacement + "x"},
      {"lead byte followed by a lead byte", "\xC3\xC3\xA9", kReplacement + "\xC3\xA9"},
      {"invalid then quote", "\xFF\"", kReplacement + "\\\""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(str(c.in), "\"" + c.out + "\"") << c.what;
    EXPECT_NO_THROW(json::parse(str(c.in))) << c.what;
  }
}

// The writer passes plain bytes a word at a time: each byte value, at every offset in and
// across a word, is escaped, kept or replaced exactly as it is on its own.
TEST(JsonWriterTest, TreatsEveryByteAlikeAtEveryOffsetOfAWord) {
  for (int b = 0; b < 256; ++b) {
    for (std::size_t before = 0; before <= 17; ++before) {
      const std::string text =
          std::string(before, 'a') + static_cast<char>(b) + std::string(9, 'z');
      if (b < 0x80) {
        ASSERT_EQ(str(text), json(text).dump()) << b << " after " << before;
      } else {  // a lone byte of a multi-byte sequence
        ASSERT_EQ(parsed(text), std::string(before, 'a') + kReplacement + std::string(9, 'z'))
            << b << " after " << before;
      }
    }
  }
}

TEST(JsonWriterTest, SanitisedOutputAlwaysParses) {
  // Every byte value after every other, so each lead byte meets every follower.
  std::string all;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; b += 15) {
      all.push_back(static_cast<char>(a));
      all.push_back(static_cast<char>(b));
    }
  }
  json j;
  ASSERT_NO_THROW(j = json::parse(str(all)));
  EXPECT_TRUE(j.is_string());
}

TEST(JsonWriterTest, IntegersAtTheLimits) {
  EXPECT_EQ(integer(0), "0");
  EXPECT_EQ(integer(-1), "-1");
  EXPECT_EQ(integer(42), "42");
  EXPECT_EQ(integer(std::numeric_limits<std::int64_t>::max()), "9223372036854775807");
  EXPECT_EQ(integer(std::numeric_limits<std::int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(json::parse(integer(std::numeric_limits<std::int64_t>::min())).get<std::int64_t>(),
            std::numeric_limits<std::int64_t>::min());
}

TEST(JsonWriterTest, FloatsInShortestRoundTripForm) {
  EXPECT_EQ(floating(0.5), "0.5");
  EXPECT_EQ(floating(0.1), "0.1");
  EXPECT_EQ(floating(-2.25), "-2.25");
  EXPECT_EQ(floating(1.0), "1");
  EXPECT_EQ(floating(1e21), "1e+21");
  EXPECT_EQ(floating(0.1 + 0.2), "0.30000000000000004");
  for (double v : {0.1, 1.0 / 3, 2.0 / 3, 1e-300, 1.7976931348623157e308, 5e-324,
                   2.2250738585072014e-308, -123456.789, 9007199254740993.0, 3.141592653589793}) {
    const std::string s = floating(v);
    const json j = json::parse(s);
    ASSERT_TRUE(j.is_number()) << s;
    EXPECT_EQ(j.get<double>(), v) << s;
  }
}

TEST(JsonWriterTest, NegativeZeroStaysANumber) {
  const std::string s = floating(-0.0);
  EXPECT_EQ(s, "-0");
  EXPECT_TRUE(json::parse(s).is_number()) << s;
}

TEST(JsonWriterTest, NonFiniteFloatsBecomeStrings) {
  EXPECT_EQ(floating(std::numeric_limits<double>::quiet_NaN()), R"("NaN")");
  EXPECT_EQ(floating(-std::numeric_limits<double>::quiet_NaN()), R"("NaN")");
  EXPECT_EQ(floating(std::numeric_limits<double>::infinity()), R"("Infinity")");
  EXPECT_EQ(floating(-std::numeric_limits<double>::infinity()), R"("-Infinity")");
}

// RFC 4648 section 10 test vectors.
TEST(JsonWriterTest, Base64Rfc4648Vectors) {
  EXPECT_EQ(base64(""), R"("")");
  EXPECT_EQ(base64("f"), R"("Zg==")");
  EXPECT_EQ(base64("fo"), R"("Zm8=")");
  EXPECT_EQ(base64("foo"), R"("Zm9v")");
  EXPECT_EQ(base64("foob"), R"("Zm9vYg==")");
  EXPECT_EQ(base64("fooba"), R"("Zm9vYmE=")");
  EXPECT_EQ(base64("foobar"), R"("Zm9vYmFy")");
}

TEST(JsonWriterTest, Base64UsesTheStandardAlphabetForHighBytes) {
  EXPECT_EQ(base64("\xFF\xFF\xFF"), R"("////")");
  EXPECT_EQ(base64("\xFB\xFF\xBF"), R"("+/+/")");
  EXPECT_EQ(base64(std::string_view("\0\0\0", 3)), R"("AAAA")");
  EXPECT_EQ(base64(std::string_view("\0", 1)), R"("AA==")");
  EXPECT_EQ(base64("\xFF"), R"("/w==")");
  EXPECT_EQ(base64("\xFF\xFE"), R"("//4=")");
}

}  // namespace
}  // namespace sluice::gateway
