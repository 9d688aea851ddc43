// SessionManager ends what the registry expires or evicts (HTTP ids stop working, connections
// are closed through their closer), and ContextHandles refuse forged, expired and borrowed
// handles.
#include "session/session_manager.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "session/context_handles.hpp"

namespace sluice::session {
namespace {

using namespace std::chrono_literals;

TokenSigner signer() {
  return TokenSigner(std::string(32, 'k'));
}

TEST(SessionManagerTest, EvictingAClientsOldestSessionEndsItsIdOrClosesItsConnection) {
  asio::io_context io;
  SessionTokens tokens(signer(), 1h);
  SessionManagerParams p;
  p.sessions.max_sessions_per_client = 2;
  SessionManager manager(io.get_executor(), p, tokens);

  const std::string first = tokens.mint("2025-11-25", "agent@10.0.0.1");
  ASSERT_TRUE(manager.open(first, SessionKind::http, "agent@10.0.0.1"));
  bool ws_closed = false;
  ASSERT_TRUE(manager.open("ws:1", SessionKind::websocket, "agent@10.0.0.1",
                           [&ws_closed] { ws_closed = true; }));
  // A third session of the same client evicts the least recently seen: the HTTP one.
  ASSERT_TRUE(manager.open(tokens.mint("2025-11-25", "agent@10.0.0.1"), SessionKind::http,
                           "agent@10.0.0.1"));
  EXPECT_FALSE(tokens.find(first)) << "an evicted HTTP session id must stop working";
  EXPECT_FALSE(ws_closed);
  // Another client is not affected by this one's cap.
  ASSERT_TRUE(manager.open("ws:2", SessionKind::websocket, "other@10.0.0.2", [] {}));
  EXPECT_FALSE(ws_closed);
  // And a fourth evicts the WebSocket, which is closed through its closer.
  ASSERT_TRUE(manager.open("ws:3", SessionKind::websocket, "agent@10.0.0.1", [] {}));
  EXPECT_TRUE(ws_closed);

  const auto status = manager.status();
  EXPECT_EQ(status["sessions"]["open"], 3);
  EXPECT_EQ(status["sessions"]["evicted"], 2);
}

TEST(SessionManagerTest, IdleSessionsAreSweptAndTouchKeepsThemAlive) {
  asio::io_context io;
  SessionTokens tokens(signer(), 1h);
  SessionManagerParams p;
  p.sessions.idle_timeout = 50ms;
  SessionManager manager(io.get_executor(), p, tokens);
  const std::string idle = tokens.mint("2025-11-25", "a@h");
  const std::string busy = tokens.mint("2025-11-25", "b@h");
  manager.open(idle, SessionKind::http, "a@h");
  manager.open(busy, SessionKind::http, "b@h");
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(20ms);
    manager.touch(busy, SessionKind::http, "b@h");
  }
  manager.sweep();
  EXPECT_FALSE(tokens.find(idle)) << "idle past its timeout";
  EXPECT_TRUE(tokens.find(busy)) << "touched within its timeout";
  EXPECT_EQ(manager.status()["sessions"]["expired"], 1);
}

TEST(SessionManagerTest, SessionsOfOtherReplicasAreAdoptedOnFirstTouch) {
  asio::io_context io;
  SessionTokens tokens(signer(), 1h);
  SessionManager manager(io.get_executor(), {}, tokens);
  manager.touch(tokens.mint("2025-11-25", "c@h"), SessionKind::http, "c@h");
  EXPECT_EQ(manager.status()["sessions"]["open"], 1);
}

TEST(SessionManagerTest, AdmissionFollowsTheClientsLimits) {
  asio::io_context io;
  SessionTokens tokens(signer(), 1h);
  SessionManagerParams p;
  p.limits.defaults.max_in_flight = 1;
  SessionManager manager(io.get_executor(), p, tokens);
  auto first = manager.admit("a@h", "");
  ASSERT_TRUE(first.ok());
  const auto second = manager.admit("a@h", "");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(*second.refusal, Refusal::too_many_in_flight);
  EXPECT_TRUE(manager.admit("b@h", "").ok()) << "limits are per client";
  first.permit.reset();
  EXPECT_TRUE(manager.admit("a@h", "").ok());
}

TEST(SessionTokensTest, IdsCarryTheirClient) {
  SessionTokens tokens(signer(), 1h);
  const auto s = tokens.find(tokens.mint("2025-06-18", "odd|name@::1"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->protocol_version, "2025-06-18");
  EXPECT_EQ(s->client, "odd/name@::1");
}

TEST(ContextHandlesTest, RoundTripAndRefusals) {
  ContextHandles handles(signer(), 1h);
  const ContextHandles::Context c{"warehouse", {"analytics", "sales", "wh_small", "analyst"}};
  const std::string h = handles.mint("alice@h", c);
  auto opened = handles.open(h, "alice@h");
  ASSERT_TRUE(std::holds_alternative<ContextHandles::Context>(opened));
  const auto& got = std::get<ContextHandles::Context>(opened);
  EXPECT_EQ(got.source, "warehouse");
  EXPECT_EQ(got.db, c.db);

  auto other = handles.open(h, "mallory@h");
  ASSERT_TRUE(std::holds_alternative<std::string>(other));
  EXPECT_NE(std::get<std::string>(other).find("another client"), std::string::npos);

  std::string forged = h;
  forged[3] = forged[3] == 'x' ? 'y' : 'x';
  auto bad = handles.open(forged, "alice@h");
  ASSERT_TRUE(std::holds_alternative<std::string>(bad));
  EXPECT_NE(std::get<std::string>(bad).find("not valid"), std::string::npos);

  // Signed by another key: refused as well.
  ContextHandles elsewhere(TokenSigner(std::string(32, 'z')), 1h);
  EXPECT_TRUE(std::holds_alternative<std::string>(elsewhere.open(h, "alice@h")));

  // A session id is signed with the same key but is not a handle.
  SessionTokens tokens(signer(), 1h);
  EXPECT_TRUE(std::holds_alternative<std::string>(
      handles.open(tokens.mint("2025-11-25", "alice@h"), "alice@h")));

  ContextHandles expired(signer(), -1s);
  auto old = expired.open(expired.mint("alice@h", c), "alice@h");
  ASSERT_TRUE(std::holds_alternative<std::string>(old));
  EXPECT_NE(std::get<std::string>(old).find("expired"), std::string::npos);
}

}  // namespace
}  // namespace sluice::session
