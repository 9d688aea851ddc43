#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "pool/connection.hpp"
#include "pool/db_context.hpp"

namespace sluice::pool {

class PoolShared;

// What a ConnectionPool keeps for each open connection. While the connection is borrowed only
// its borrower touches this; the pool reads it when the connection comes back.
struct PoolEntry {
  std::unique_ptr<Connection> conn;
  // The database context the connection's session is in, as its borrowers recorded it;
  // nullopt when unknown. A new connection is in its default context, DbContext{}.
  std::optional<DbContext> context{std::in_place};
};

// A connection borrowed from a ConnectionPool. Move-only; destroying it (or calling
// release()) gives the connection back, and the pool discards it instead of reusing it if
// its state became unknown. Keeps the pool's internals alive, so a handle may outlive the
// ConnectionPool object. Not thread-safe: one borrower uses it at a time.
class PooledConnection {
 public:
  PooledConnection() = default;
  PooledConnection(std::shared_ptr<PoolShared> pool, std::uint64_t id, PoolEntry* entry) noexcept
      : pool_(std::move(pool)), id_(id), entry_(entry) {}
  PooledConnection(PooledConnection&& o) noexcept
      : pool_(std::move(o.pool_)), id_(o.id_), entry_(std::exchange(o.entry_, nullptr)) {}
  PooledConnection& operator=(PooledConnection&& o) noexcept {
    if (this != &o) {
      release();
      pool_ = std::move(o.pool_);
      id_ = o.id_;
      entry_ = std::exchange(o.entry_, nullptr);
    }
    return *this;
  }
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  ~PooledConnection() { release(); }

  Connection& operator*() const noexcept { return *entry_->conn; }
  Connection* operator->() const noexcept { return entry_->conn.get(); }
  explicit operator bool() const noexcept { return entry_ != nullptr; }
  std::uint64_t id() const noexcept { return id_; }

  // The context the connection's session is in, as last recorded; nullopt when unknown.
  const std::optional<DbContext>& context() const noexcept { return entry_->context; }
  // Records the session's context. It is kept with the connection across borrowers, and
  // ConnectionPool::acquire(deadline, ctx) prefers idle connections recorded in `ctx`.
  // Record nullopt before anything that may leave the context uncertain, and the real
  // context once it is certain again.
  void set_context(std::optional<DbContext> ctx) { entry_->context = std::move(ctx); }

  // Gives the connection back now.
  void release() noexcept { give_back(false); }
  // Gives the connection back to be closed, whatever its state: for a connection that is
  // usable but must not be handed to anyone else.
  void discard() noexcept { give_back(true); }

 private:
  void give_back(bool discard) noexcept;

  std::shared_ptr<PoolShared> pool_;
  std::uint64_t id_ = 0;
  PoolEntry* entry_ = nullptr;
};

}  // namespace sluice::pool
