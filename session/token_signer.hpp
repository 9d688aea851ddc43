#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::session {

// Signs short payloads with HMAC-SHA256 so that tokens (session ids, context handles) are
// self-contained: any replica holding the same key can verify them, and nothing needs to be
// stored to recognise them. A token is base64url(payload) "." base64url(mac): visible ASCII
// only, as MCP requires of session ids. Thread-safe (immutable after construction).
class TokenSigner {
 public:
  // `key` is raw bytes; at least 32 of them.
  explicit TokenSigner(std::string key);
  // A signer with a fresh random key: tokens die with the process.
  static TokenSigner random();

  std::string sign(std::string_view payload) const;
  // The payload if `token` carries a valid signature by this key, else nullopt. Constant time
  // in the signature comparison.
  std::optional<std::string> verify(std::string_view token) const;

 private:
  struct Keyed;
  std::shared_ptr<const Keyed> keyed_;  // never changed after construction
};

}  // namespace sluice::session
