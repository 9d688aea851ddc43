#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <variant>

#include "pool/db_context.hpp"
#include "session/token_signer.hpp"

namespace sluice::session {

// Context handles: how a stateless (2026-07-28) client keeps a chosen database context
// across calls. set_context mints one; later calls pass it back as their `context`
// argument. A handle is signed (any replica with the same key accepts it), names the client
// it was minted for and the source, and expires. Thread-safe (immutable).
class ContextHandles {
 public:
  struct Context {
    std::string source;
    pool::DbContext db;
  };

  ContextHandles(TokenSigner signer, std::chrono::seconds max_age);

  std::string mint(std::string_view client, const Context& context) const;
  // The context, or a message saying why the handle is refused (forged or damaged, expired,
  // minted for another client), for the caller to show.
  std::variant<Context, std::string> open(std::string_view handle, std::string_view client) const;

  std::chrono::seconds max_age() const noexcept { return max_age_; }

 private:
  TokenSigner signer_;
  std::chrono::seconds max_age_;
};

}  // namespace sluice::session
