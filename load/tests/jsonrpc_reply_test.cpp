#include "load/src/jsonrpc_reply.hpp"

#include <gtest/gtest.h>

namespace sluice::load {
namespace {

JsonRpcReply parse(std::string_view text) {
  JsonRpcReply r;
  parse_jsonrpc_reply(text, r);
  return r;
}

TEST(JsonRpcReplyTest, ASuccessfulToolResult) {
  const auto r =
      parse(R"({"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"1"}],)"
            R"("structuredContent":{"rows":[[1]],"isError":true},"isError":false}})");
  EXPECT_EQ(r.type, JsonRpcReply::Type::response);
  EXPECT_TRUE(r.matches(7));
  EXPECT_FALSE(r.matches(8));
  EXPECT_FALSE(r.is_error_result);  // the nested isError belongs to the tool's data
  EXPECT_TRUE(judge_reply(r, 7).ok());
}

TEST(JsonRpcReplyTest, AToolErrorCarriesItsFirstText) {
  const auto r =
      parse(R"({"result":{"isError":true,"content":[{"type":"text","text":"no such table: x"},)"
            R"({"type":"text","text":"second"}]},"id":3,"jsonrpc":"2.0"})");
  const auto o = judge_reply(r, 3);
  EXPECT_EQ(o.kind, ErrorKind::tool);
  EXPECT_EQ(o.detail, "no such table: x");
}

TEST(JsonRpcReplyTest, AJsonRpcErrorByCode) {
  const auto r = parse(R"({"jsonrpc":"2.0","id":4,"error":{"code":-32029,"message":"rate limited",)"
                       R"("data":{"reason":"rate_limited","message":"nested"}}})");
  const auto o = judge_reply(r, 4);
  EXPECT_EQ(o.kind, ErrorKind::jsonrpc);
  EXPECT_EQ(o.code, -32029);
  EXPECT_EQ(o.detail, "rate limited");
  EXPECT_EQ(error_kind_name(o.kind, o.code), "jsonrpc_-32029");
}

TEST(JsonRpcReplyTest, AnErrorWithANullIdStillCounts) {
  const auto o = judge_reply(
      parse(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})"), 9);
  EXPECT_EQ(o.kind, ErrorKind::jsonrpc);
  EXPECT_EQ(o.code, -32700);
}

TEST(JsonRpcReplyTest, NotificationsRequestsAndJunk) {
  EXPECT_EQ(parse(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"id":1}})").type,
            JsonRpcReply::Type::notification);
  EXPECT_EQ(parse(R"({"jsonrpc":"2.0","id":1,"method":"ping"})").type, JsonRpcReply::Type::request);
  EXPECT_EQ(parse("not json").type, JsonRpcReply::Type::invalid);
  EXPECT_EQ(parse("[1,2]").type, JsonRpcReply::Type::invalid);
  EXPECT_EQ(parse(R"({"jsonrpc":"2.0","id":1})").type, JsonRpcReply::Type::invalid);
  EXPECT_EQ(judge_reply(parse("<html>"), 1).kind, ErrorKind::protocol);
}

TEST(JsonRpcReplyTest, AnotherIdIsAProtocolError) {
  EXPECT_EQ(judge_reply(parse(R"({"jsonrpc":"2.0","id":2,"result":{}})"), 1).kind,
            ErrorKind::protocol);
  EXPECT_EQ(judge_reply(parse(R"({"jsonrpc":"2.0","id":"1","result":{}})"), 1).kind,
            ErrorKind::protocol);
}

TEST(JsonRpcReplyTest, DeepNestingAndLongTextsAreHandled) {
  std::string deep = R"({"jsonrpc":"2.0","id":1,"result":{"a":)";
  for (int i = 0; i < 50; ++i) deep += R"({"isError":true,"b":)";
  deep += "1";
  for (int i = 0; i < 50; ++i) deep += "}";
  deep += "}}";
  const auto r = parse(deep);
  EXPECT_EQ(r.type, JsonRpcReply::Type::response);
  EXPECT_FALSE(r.is_error_result);
  const std::string long_text(5000, 'x');
  const auto t = parse(R"({"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[{"text":")" +
                       long_text + R"("}]}})");
  EXPECT_EQ(t.detail.size(), JsonRpcReply::kDetailLimit);
}

TEST(JsonRpcReplyTest, EscapedTextsAreDecodedAndOddNumbersStillRead) {
  const auto r =
      parse(R"({"jsonrpc":"2.0","id":5,"result":{"isError":true,"content":[{"type":"text",)"
            R"("text":"column \"na\u00efve\" of relation \ud83d\ude00\nis missing"}]}})");
  EXPECT_EQ(judge_reply(r, 5).kind, ErrorKind::tool);
  EXPECT_EQ(r.detail, "column \"na\xC3\xAFve\" of relation \xF0\x9F\x98\x80\nis missing");
  // Numbers past a double's range are left to nlohmann's parser, which reads underflow as 0
  // and refuses overflow: the first is still a response, the second is not JSON.
  EXPECT_TRUE(judge_reply(parse(R"({"jsonrpc":"2.0","id":6,"result":{"x":1e-400}})"), 6).ok());
  EXPECT_EQ(parse(R"({"jsonrpc":"2.0","id":6,"result":{"x":1e400}})").type,
            JsonRpcReply::Type::invalid);
}

TEST(JsonRpcReplyTest, ReusingTheReplyResetsIt) {
  JsonRpcReply r;
  parse_jsonrpc_reply(R"({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}})", r);
  parse_jsonrpc_reply(R"({"jsonrpc":"2.0","id":2,"result":{}})", r);
  EXPECT_FALSE(r.has_error);
  EXPECT_TRUE(r.detail.empty());
  EXPECT_TRUE(judge_reply(r, 2).ok());
}

}  // namespace
}  // namespace sluice::load
