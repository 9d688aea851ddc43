#include "session/session_tokens.hpp"

#include <openssl/rand.h>

#include <array>
#include <charconv>

namespace sluice::session {

namespace {
using SysClock = std::chrono::system_clock;
}  // namespace

SessionTokens::SessionTokens(TokenSigner signer, std::chrono::seconds max_age)
    : signer_(std::move(signer)), max_age_(max_age) {}

// Payload: "s2|<issued seconds>|<version>|<client>|<12 random bytes>". The client may hold
// any byte but '|' is replaced; "s1" ids (no client) are still accepted.
std::string SessionTokens::mint(std::string_view protocol_version, std::string_view client) {
  std::array<unsigned char, 12> nonce{};
  RAND_bytes(nonce.data(), static_cast<int>(nonce.size()));
  std::string payload = "s2|";
  payload += std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(SysClock::now().time_since_epoch()).count());
  payload += '|';
  payload += protocol_version;
  payload += '|';
  for (char c : client) payload += c == '|' ? '/' : c;
  payload += '|';
  payload.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  return signer_.sign(payload);
}

std::optional<SessionTokens::Session> SessionTokens::find(std::string_view id) const {
  auto payload = signer_.verify(id);
  if (!payload || !(payload->starts_with("s1|") || payload->starts_with("s2|"))) {
    return std::nullopt;
  }
  const bool with_client = payload->starts_with("s2|");
  const std::string_view p(*payload);
  const auto a = p.find('|', 3);
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = p.find('|', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  std::int64_t secs = 0;
  std::from_chars(p.data() + 3, p.data() + a, secs);
  Session s{std::string(p.substr(a + 1, b - a - 1)),
            SysClock::time_point(std::chrono::seconds(secs)),
            {}};
  if (with_client) {
    constexpr std::size_t kNonce = 12;
    if (p.size() < b + 2 + kNonce) return std::nullopt;
    const auto end = p.size() - kNonce - 1;  // the '|' before the nonce
    if (end < b + 1 || p[end] != '|') return std::nullopt;
    s.client = std::string(p.substr(b + 1, end - b - 1));
  }
  if (SysClock::now() - s.issued > max_age_) return std::nullopt;
  std::lock_guard lock(mutex_);
  if (ended_.contains(id)) return std::nullopt;
  return s;
}

bool SessionTokens::end(std::string_view id) {
  auto s = find(id);
  if (!s) return false;
  std::lock_guard lock(mutex_);
  const auto now = SysClock::now();
  std::erase_if(ended_, [&](const auto& kv) { return now - kv.second > max_age_; });
  ended_.emplace(std::string(id), s->issued);
  return true;
}

}  // namespace sluice::session
