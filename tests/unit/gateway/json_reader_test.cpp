#include "gateway/json_reader.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bit>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sluice::gateway {
namespace {

using json = nlohmann::json;

// The text with every byte outside printable ASCII as \xNN, for failure messages.
std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(ch);
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

// The same document, down to the value types (unsigned against signed, double against
// integer) and the bits of every double, which json's operator== does not tell apart.
::testing::AssertionResult identical(const json& a, const json& b, const std::string& path = "$") {
  if (a.type() != b.type()) {
    return ::testing::AssertionFailure() << path << ": " << a.type_name() << " " << a.dump()
                                         << " vs " << b.type_name() << " " << b.dump();
  }
  switch (a.type()) {
    case json::value_t::object: {
      if (a.size() != b.size()) return ::testing::AssertionFailure() << path << ": member count";
      for (auto it = a.begin(); it != a.end(); ++it) {
        if (!b.contains(it.key())) {
          return ::testing::AssertionFailure() << path << ": no member " << it.key();
        }
        auto r = identical(it.value(), b.at(it.key()), path + "." + it.key());
        if (!r) return r;
      }
      return ::testing::AssertionSuccess();
    }
    case json::value_t::array: {
      if (a.size() != b.size()) return ::testing::AssertionFailure() << path << ": length";
      for (std::size_t i = 0; i < a.size(); ++i) {
        auto r = identical(a[i], b[i], path + "[" + std::to_string(i) + "]");
        if (!r) return r;
      }
      return ::testing::AssertionSuccess();
    }
    case json::value_t::number_float:
      if (std::bit_cast<std::uint64_t>(a.get<double>()) !=
          std::bit_cast<std::uint64_t>(b.get<double>())) {
        return ::testing::AssertionFailure() << path << ": " << a.dump() << " vs " << b.dump();
      }
      return ::testing::AssertionSuccess();
    default:
      if (a != b) {
        return ::testing::AssertionFailure() << path << ": " << a.dump() << " vs " << b.dump();
      }
      return ::testing::AssertionSuccess();
  }
}

// parse_json() must agree with nlohmann's parser on every input: both refuse it, or both
// accept it with identical documents.
::testing::AssertionResult agrees(std::string_view text) {
  const json expected = json::parse(text, nullptr, false);
  const json got = parse_json(text);
  if (expected.is_discarded() != got.is_discarded()) {
    return ::testing::AssertionFailure()
           << "nlohmann " << (expected.is_discarded() ? "refuses" : "accepts") << ", parse_json "
           << (got.is_discarded() ? "refuses" : "accepts") << ": " << printable(text);
  }
  if (expected.is_discarded()) return ::testing::AssertionSuccess();
  auto r = identical(got, expected);
  if (!r) r << " in " << printable(text);
  return r;
}

// Inputs the reader itself must take (not hand to nlohmann), with what each must become.
TEST(JsonReaderTest, ReadsWhatMcpClientsSend) {
  const std::string call =
      R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"query",)"
      R"("arguments":{"sql":"SELECT \"name\"\nFROM t WHERE x = 'é'","max_rows":10},)"
      R"("_meta":{"progressToken":"p-1"}}})";
  json doc;
  ASSERT_TRUE(read_json(call, doc));
  EXPECT_EQ(doc["id"], 7);
  EXPECT_EQ(doc["id"].type(), json::value_t::number_unsigned);
  EXPECT_EQ(doc["params"]["arguments"]["sql"], "SELECT \"name\"\nFROM t WHERE x = '\xC3\xA9'");
  EXPECT_EQ(doc["params"]["_meta"]["progressToken"], "p-1");
  EXPECT_TRUE(agrees(call));

  ASSERT_TRUE(read_json(" [ 1 , -2 , 3.5 , true , false , null , \"\" , { } , [ ] ] \r\n", doc));
  EXPECT_EQ(doc.dump(), R"([1,-2,3.5,true,false,null,"",{},[]])");
  EXPECT_EQ(doc[1].type(), json::value_t::number_integer);
}

TEST(JsonReaderTest, DecodesEscapesAndSurrogatePairs) {
  json doc;
  ASSERT_TRUE(read_json(R"("\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00\u0000")", doc));
  EXPECT_EQ(doc.get<std::string>(),
            std::string("\"\\/\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") + '\0');
  for (const char* bad : {R"("\ud83d")", R"("\ud83dx")", R"("\ud83d\u0041")", R"("\ude00")",
                          R"("\u12")", R"("\u12G4")", R"("\x41")", R"("\)"}) {
    EXPECT_FALSE(read_json(bad, doc)) << bad;
    EXPECT_TRUE(parse_json(bad).is_discarded()) << bad;
  }
}

TEST(JsonReaderTest, KeepsTheLastOfDuplicateKeysAsNlohmannDoes) {
  const std::string text = R"({"a":1,"b":{"x":1},"a":{"y":[2]},"b":null})";
  json doc;
  ASSERT_TRUE(read_json(text, doc));
  EXPECT_EQ(doc.dump(), R"({"a":{"y":[2]},"b":null})");
  EXPECT_TRUE(agrees(text));
}

TEST(JsonReaderTest, TypesNumbersAsNlohmannDoes) {
  for (const char* text : {"0",
                           "-0",
                           "7",
                           "-7",
                           "18446744073709551615",
                           "18446744073709551616",
                           "-9223372036854775808",
                           "-9223372036854775809",
                           "9223372036854775808",
                           "1.0",
                           "-0.0",
                           "1e2",
                           "1E+2",
                           "1e-2",
                           "123.456e-7",
                           "0.1",
                           "2.2250738585072014e-308",
                           "1.7976931348623157e308",
                           "4.9406564584124654e-324",
                           "1e400",
                           "-1e400",
                           "1e-400",
                           "[1e400]",
                           "99999999999999999999999"}) {
    EXPECT_TRUE(agrees(text)) << text;
  }
  json doc;
  ASSERT_TRUE(read_json("18446744073709551616", doc));
  EXPECT_EQ(doc.type(), json::value_t::number_float);
  EXPECT_FALSE(read_json("1e400", doc)) << "out of a double's range: nlohmann decides";
}

TEST(JsonReaderTest, RefusesWhatIsNotJson) {
  for (const char* text :
       {"",          " ",        "{",        "}",       "[1,]",      "[,1]",  "{\"a\":1,}",
        "{\"a\" 1}", "{a:1}",    "{'a':1}",  "[1 2]",   "01",        "-",     "+1",
        ".5",        "1.",       "1e",       "1e+",     "--1",       "NaN",   "Infinity",
        "-Infinity", "tru",      "nul",      "falsey",  "truefalse", "[true", "\"abc",
        "\"a\tb\"",  "\"a\nb\"", "\"\x1F\"", "// c\n1", "/* c */ 1", "1 2",   "{} {}",
        "[1]]",      "\"\\u00\""}) {
    EXPECT_TRUE(parse_json(text).is_discarded()) << text;
    EXPECT_TRUE(agrees(text)) << text;
  }
  // Bytes that are not well-formed UTF-8, inside a string and outside one.
  for (const std::string_view text :
       {"\"\xC0\x80\"", "\"\xC3\"", "\"\xED\xA0\x80\"", "\"\xF5\x80\x80\x80\"",
        "\"\xF4\x90\x80\x80\"", "\"\xE0\x80\xAF\"", "\"\x80\"", "\xC3\xA9"}) {
    EXPECT_TRUE(parse_json(text).is_discarded()) << printable(text);
    EXPECT_TRUE(agrees(text));
  }
  // A NUL byte: an unescaped control character inside a string; after a value, where
  // nlohmann's lexer takes it for the end of the input, the reader refuses the text and
  // parse_json() gives nlohmann's answer.
  json doc;
  for (const std::string& text : {std::string("[1]\0", 4), std::string("\"a\0b\"", 5)}) {
    EXPECT_FALSE(read_json(text, doc));
    EXPECT_TRUE(agrees(text));
  }
}

TEST(JsonReaderTest, LeavesDeepNestingAndByteOrderMarksToNlohmann) {
  const std::string deep = std::string(1000, '[') + "1" + std::string(1000, ']');
  json doc;
  EXPECT_FALSE(read_json(deep, doc));
  const json parsed = parse_json(deep);
  ASSERT_FALSE(parsed.is_discarded());
  EXPECT_TRUE(agrees(deep));
  const std::string shallow = std::string(100, '[') + "1" + std::string(100, ']');
  EXPECT_TRUE(read_json(shallow, doc));

  const std::string bom = "\xEF\xBB\xBF{\"a\":1}";
  EXPECT_FALSE(read_json(bom, doc));
  EXPECT_EQ(parse_json(bom).dump(), R"({"a":1})");
}

// The reader skips plain bytes a word at a time: every byte that ends or interrupts the
// plain run, and the plain ones around the cut-offs (space, DEL, '!', ']'), at every offset
// in and across a word, inside strings short and long, decide as nlohmann does.
TEST(JsonReaderTest, FindsEveryStopByteAtEveryOffsetOfAWord) {
  const std::vector<std::string> stops = {"\\\"", "\\\\", "\\n",      "\\u00e9",
                                          "\x01", "\x1F", "\t",       " ",
                                          "\x7F", "!",    "[",        "]",
                                          "#",    "~",    "\xC3\xA9", "\xF0\x9F\x98\x80",
                                          "\x80", "\xC3", "\xFF",     std::string(1, '\0')};
  int compared = 0;
  int read_itself = 0;
  for (const std::string& stop : stops) {
    for (std::size_t before = 0; before <= 17; ++before) {
      for (std::size_t after : {0, 1, 7, 8, 9}) {
        const std::string text =
            "\"" + std::string(before, 'a') + stop + std::string(after, 'z') + "\"";
        const std::string in_object = "{\"k" + std::string(before, 'q') + "\":" + text + "}";
        for (const std::string& t : {text, in_object}) {
          ASSERT_TRUE(agrees(t)) << printable(t);
          // What nlohmann takes, the reader takes itself rather than handing it on.
          if (!json::parse(t, nullptr, false).is_discarded()) {
            json doc;
            ASSERT_TRUE(read_json(t, doc)) << printable(t);
            ++read_itself;
          }
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(read_itself, 13 * 18 * 5 * 2);  // all but the seven stops that break a string
  EXPECT_EQ(compared, 20 * 18 * 5 * 2);
  // A string that never closes, its last word cut short or whole.
  for (std::size_t n = 0; n <= 17; ++n) {
    json doc;
    EXPECT_FALSE(read_json("\"" + std::string(n, 'x'), doc)) << n;
  }
  json doc;
  ASSERT_TRUE(read_json("\"" + std::string(40, 'x') + "\\\"" + std::string(9, 'y') + "\"", doc));
  EXPECT_EQ(doc.get<std::string>(), std::string(40, 'x') + "\"" + std::string(9, 'y'));
}

// A random document of up to `depth` levels, with the strings and numbers most likely to
// show a difference: escapes, non-ASCII, surrogate pairs, integer and double edges.
json random_value(std::mt19937_64& rng, int depth) {
  static const std::vector<std::string> strings = {
      "",
      "sql",
      "SELECT 1",
      "a\"b",
      "back\\slash",
      "tab\there",
      "nl\n",
      "\x01\x1f",
      "é€😀",
      "\xF4\x8F\xBF\xBF",
      "/",
      "\u2028",
      "SELECT id, customer_id, amount FROM orders ORDER BY id LIMIT 100",
      "a longer text with \"quotes\", a back\\slash and é, past a word or two"};
  static const std::vector<json> numbers = {0,
                                            1,
                                            -1,
                                            42U,
                                            -9223372036854775807LL - 1,
                                            18446744073709551615ULL,
                                            0.5,
                                            -0.0,
                                            1e300,
                                            -2.5e-300,
                                            3.141592653589793,
                                            1e21,
                                            123456789012345680000.0};
  std::uniform_int_distribution<int> kind(0, depth > 0 ? 7 : 5);
  switch (kind(rng)) {
    case 0:
      return nullptr;
    case 1:
      return (rng() & 1) != 0;
    case 2:
    case 3:
      return strings[rng() % strings.size()];
    case 4:
    case 5:
      return numbers[rng() % numbers.size()];
    case 6: {
      json a = json::array();
      for (int n = static_cast<int>(rng() % 4); n > 0; --n)
        a.push_back(random_value(rng, depth - 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int n = static_cast<int>(rng() % 4); n > 0; --n) {
        o[strings[rng() % strings.size()]] = random_value(rng, depth - 1);
      }
      return o;
    }
  }
}

// Serialised random documents, whole and then damaged one byte at a time (deleted, replaced,
// inserted): on every one of them parse_json agrees with nlohmann. Fixed seed: the same
// inputs on every run.
TEST(JsonReaderTest, AgreesWithNlohmannOnRandomAndDamagedDocuments) {
  std::mt19937_64 rng(20261123);
  static constexpr char kBytes[] = "{}[]\",:\\ 0123456789-+.eEtrufalsn\x80\xC3\xED\xF0\x1F\x7F\0u";
  const std::string_view interesting(kBytes, sizeof kBytes - 1);
  int accepted = 0;
  int refused = 0;
  for (int round = 0; round < 3000; ++round) {
    const json doc = random_value(rng, 4);
    const int indent = static_cast<int>(rng() % 3) - 1;
    const bool ascii = (rng() & 1) != 0;
    const std::string text = doc.dump(indent, ' ', ascii);
    json got;
    ASSERT_TRUE(read_json(text, got)) << text;
    ASSERT_TRUE(agrees(text));
    for (int damage = 0; damage < 8; ++damage) {
      std::string bad = text;
      const std::size_t at = rng() % (bad.size() + 1);
      const char byte = interesting[rng() % interesting.size()];
      switch (rng() % 3) {
        case 0:
          if (at < bad.size()) bad.erase(at, 1);
          break;
        case 1:
          if (at < bad.size()) bad[at] = byte;
          break;
        default:
          bad.insert(at, 1, byte);
      }
      ASSERT_TRUE(agrees(bad));
      ++(parse_json(bad).is_discarded() ? refused : accepted);
    }
  }
  // The damage must exercise both sides, or the comparison proves little.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(refused, 1000);
}

}  // namespace
}  // namespace sluice::gateway
