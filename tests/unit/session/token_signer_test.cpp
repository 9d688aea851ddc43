// Tokens are HMAC-SHA256 signed; replicas sharing a key must agree byte for byte, so the
// signature is checked against one computed independently (Python's hmac module).
#include "session/token_signer.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace sluice::session {
namespace {

std::string key_0_to_31() {
  std::string key;
  for (int i = 0; i < 32; ++i) key += static_cast<char>(i);
  return key;
}

TEST(TokenSignerTest, SignsWithHmacSha256AsAnyOtherImplementationWould) {
  const TokenSigner signer(key_0_to_31());
  EXPECT_EQ(signer.sign("hello|world"),
            "aGVsbG98d29ybGQ.-DKjR9fWh644ZGUSZJsXElADT9RcC4iF42szm2YYYSw");
  EXPECT_EQ(signer.verify("aGVsbG98d29ybGQ.-DKjR9fWh644ZGUSZJsXElADT9RcC4iF42szm2YYYSw"),
            "hello|world");
}

// HMAC pads a key of one block (64 bytes) and hashes a longer one first; both must agree
// with any other implementation too.
TEST(TokenSignerTest, KeysOfABlockAndLongerAreHandledAsHmacSpecifies) {
  std::string block;
  for (int i = 0; i < 64; ++i) block += static_cast<char>(i);
  EXPECT_EQ(TokenSigner(block).sign("hello|world"),
            "aGVsbG98d29ybGQ.slav_C0AfA-0G7L7uYmRKiXej2Ntf0eD5BFuiU5g0s4");
  std::string longer;
  for (int i = 0; i < 100; ++i) longer += static_cast<char>(i);
  EXPECT_EQ(TokenSigner(longer).sign("hello|world"),
            "aGVsbG98d29ybGQ.bHFmP-8NboGcXcjC6ToFtFPqxzKRVaj00lTKBjyIx1Y");
}

TEST(TokenSignerTest, RejectsAnotherKeyAndATamperedToken) {
  const TokenSigner signer(key_0_to_31());
  const TokenSigner other(std::string(32, 'x'));
  const std::string token = signer.sign("payload");
  EXPECT_EQ(other.verify(token), std::nullopt);
  std::string tampered = token;
  tampered[0] = tampered[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(signer.verify(tampered), std::nullopt);
  EXPECT_EQ(signer.verify("no-dot"), std::nullopt);
  EXPECT_EQ(signer.verify(token + "A"), std::nullopt);                        // signature too long
  EXPECT_EQ(signer.verify(token.substr(0, token.size() - 1)), std::nullopt);  // too short
  std::string bad_char = token;
  bad_char.back() = '=';
  EXPECT_EQ(signer.verify(bad_char), std::nullopt);
  EXPECT_THROW(TokenSigner(std::string(31, 'k')), std::invalid_argument);
}

// Verified tokens are remembered per thread, so that a session id sent with every request
// costs one MAC, not one per request. What is remembered must never vouch for a token under
// another key, even one that reuses the memory of a key that is gone.
TEST(TokenSignerTest, ARememberedTokenIsGoodOnlyUnderTheKeyThatVerifiedIt) {
  std::string token;
  {
    const TokenSigner first(key_0_to_31());
    token = first.sign("s2|remembered");
    EXPECT_EQ(first.verify(token), "s2|remembered");
    EXPECT_EQ(first.verify(token), "s2|remembered");  // the second time from memory
    const TokenSigner other(std::string(32, 'o'));
    EXPECT_EQ(other.verify(token), std::nullopt);
  }
  for (int i = 0; i < 8; ++i) {  // new keys, likely where the old ones lived
    const TokenSigner next(std::string(32, static_cast<char>('a' + i)));
    EXPECT_EQ(next.verify(token), std::nullopt) << i;
  }
  const TokenSigner same_key_again(key_0_to_31());
  EXPECT_EQ(same_key_again.verify(token), "s2|remembered");
  std::string forged = token;
  forged[2] = forged[2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(same_key_again.verify(forged), std::nullopt);
}

TEST(TokenSignerTest, CopiesAndThreadsShareOneKeyedContextSafely) {
  const TokenSigner signer(key_0_to_31());
  const TokenSigner copy = signer;  // NOLINT(performance-unnecessary-copy-initialization)
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string payload = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (copy.verify(signer.sign(payload)) == payload) ++good[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int g : good) EXPECT_EQ(g, 500);
}

}  // namespace
}  // namespace sluice::session
