#pragma once

#include <cstdint>
#include <memory>

#include "pool/connection.hpp"
#include "pool/db_context.hpp"

namespace sluice::pool {

class MuxLease;

// A connection checked out through a Multiplexer, already in the database context the
// request asked for. Move-only; destroying it (or calling release()) gives the connection
// back to the pool and then the request's place under the multiplexer's caps to the next
// request. Keeps the multiplexer's and the pool's internals alive, so it may outlive both
// objects. Not thread-safe: one borrower uses it at a time.
//
// Statements run through operator-> are watched: if one fails (or is cancelled, or never
// finishes), the connection's context is recorded as unknown and whoever gets the connection
// next resets it before use. A statement that succeeds may still have changed the context
// (SET, USE, set_config(), a function that does either): before running one that the SQL
// guard did not vet, call mark_context_unknown().
class MultiplexedConnection {
 public:
  MultiplexedConnection() noexcept;
  explicit MultiplexedConnection(std::unique_ptr<MuxLease> lease) noexcept;
  MultiplexedConnection(MultiplexedConnection&&) noexcept;
  MultiplexedConnection& operator=(MultiplexedConnection&&) noexcept;
  MultiplexedConnection(const MultiplexedConnection&) = delete;
  MultiplexedConnection& operator=(const MultiplexedConnection&) = delete;
  ~MultiplexedConnection();

  Connection& operator*() const noexcept;
  Connection* operator->() const noexcept;
  explicit operator bool() const noexcept { return lease_ != nullptr; }

  // The context the request asked for, which the connection is in.
  const DbContext& context() const noexcept;
  // The pool's id of the connection: equal ids are the same database session.
  std::uint64_t connection_id() const noexcept;

  // The session's context may no longer be context(): the connection is reset before its next
  // borrower uses it.
  void mark_context_unknown() noexcept;

  // Gives the connection back now.
  void release() noexcept;

 private:
  std::unique_ptr<MuxLease> lease_;
};

}  // namespace sluice::pool
