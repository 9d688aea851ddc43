#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "session/token_signer.hpp"

namespace sluice::session {

// Legacy MCP session ids (Streamable HTTP, 2025-03-26 to 2025-11-25). An id is a signed
// token carrying the negotiated protocol version and when it was issued, so any replica
// (or this process after a restart, given the same key) accepts it without shared state.
// Ending a session (DELETE) is remembered locally until the id would have expired anyway.
// Thread-safe.
class SessionTokens {
 public:
  struct Session {
    std::string protocol_version;
    std::chrono::system_clock::time_point issued;
    std::string client;  // who opened it (see SessionManager); empty in ids minted before
  };

  SessionTokens(TokenSigner signer, std::chrono::seconds max_age);

  std::string mint(std::string_view protocol_version, std::string_view client = {});
  // The session if `id` is genuine, unexpired and not ended; nullopt otherwise.
  std::optional<Session> find(std::string_view id) const;
  // Ends the session; false if it was not a live session.
  bool end(std::string_view id);

 private:
  TokenSigner signer_;
  std::chrono::seconds max_age_;
  // Looked up by string_view: checking an id costs no copy of it.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::chrono::system_clock::time_point, Hash, std::equal_to<>>
      ended_;
};

}  // namespace sluice::session
