#include "load/src/sse_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::load {
namespace {

std::vector<std::string> events_of(const std::vector<std::string>& chunks) {
  SseParser p;
  std::vector<std::string> out;
  for (const auto& c : chunks) {
    p.feed(c, [&](std::string_view data) {
      out.emplace_back(data);
      return false;
    });
  }
  return out;
}

TEST(SseParserTest, OneEventPerBlankLine) {
  EXPECT_EQ(events_of({"event: message\ndata: {\"a\":1}\n\ndata: two\n\n"}),
            (std::vector<std::string>{"{\"a\":1}", "two"}));
}

TEST(SseParserTest, JoinsDataLinesAndSkipsCommentsAndOtherFields) {
  EXPECT_EQ(events_of({": keep-alive\n\nid: 7\nretry: 100\ndata: a\ndata:b\ndata:  c\n\n"}),
            (std::vector<std::string>{"a\nb\n c"}));
}

TEST(SseParserTest, EventsWithoutDataAreNotDispatched) {
  EXPECT_TRUE(events_of({"id: 1\ndata\n\n"}) == std::vector<std::string>{""});
  EXPECT_TRUE(events_of({"event: x\nid: 1\n\n"}).empty());
  EXPECT_TRUE(events_of({"data: unfinished\n"}).empty());
}

TEST(SseParserTest, AnyLineEndingSplitAnywhere) {
  const std::string stream = "data: one\r\n\r\ndata: two\r\rdata: three\n\n";
  EXPECT_EQ(events_of({stream}), (std::vector<std::string>{"one", "two", "three"}));
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  EXPECT_EQ(events_of(bytes), (std::vector<std::string>{"one", "two", "three"}));
}

TEST(SseParserTest, StopsWhenTheCallbackHasWhatItWants) {
  SseParser p;
  int seen = 0;
  const bool stopped = p.feed("data: 1\n\ndata: 2\n\ndata: 3\n\n", [&](std::string_view data) {
    ++seen;
    return data == "2";
  });
  EXPECT_TRUE(stopped);
  EXPECT_EQ(seen, 2);
  p.reset();
  EXPECT_FALSE(p.feed("data: 4\n\n", [&](std::string_view) { return false; }));
}

}  // namespace
}  // namespace sluice::load
