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

TEST(TokenSignerTest, RejectsAnotherKeyAndATamperedToken) {
  const TokenSigner signer(key_0_to_31());
  const TokenSigner other(std::string(32, 'x'));
  const std::string token = signer.sign("payload");
  EXPECT_EQ(other.verify(token), std::nullopt);
  std::string tampered = token;
  tampered[0] = tampered[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(signer.verify(tampered), std::nullopt);
  EXPECT_EQ(signer.verify("no-dot"), std::nullopt);
  EXPECT_THROW(TokenSigner(std::string(31, 'k')), std::invalid_argument);
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
