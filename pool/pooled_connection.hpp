#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "pool/connection.hpp"

namespace sluice::pool {

class PoolShared;

// A connection borrowed from a ConnectionPool. Move-only; destroying it (or calling
// release()) gives the connection back, and the pool discards it instead of reusing it if
// its state became unknown. Keeps the pool's internals alive, so a handle may outlive the
// ConnectionPool object. Not thread-safe: one borrower uses it at a time.
class PooledConnection {
 public:
  PooledConnection() = default;
  PooledConnection(std::shared_ptr<PoolShared> pool, std::uint64_t id, Connection* conn) noexcept
      : pool_(std::move(pool)), id_(id), conn_(conn) {}
  PooledConnection(PooledConnection&& o) noexcept
      : pool_(std::move(o.pool_)), id_(o.id_), conn_(std::exchange(o.conn_, nullptr)) {}
  PooledConnection& operator=(PooledConnection&& o) noexcept {
    if (this != &o) {
      release();
      pool_ = std::move(o.pool_);
      id_ = o.id_;
      conn_ = std::exchange(o.conn_, nullptr);
    }
    return *this;
  }
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  ~PooledConnection() { release(); }

  Connection& operator*() const noexcept { return *conn_; }
  Connection* operator->() const noexcept { return conn_; }
  explicit operator bool() const noexcept { return conn_ != nullptr; }
  std::uint64_t id() const noexcept { return id_; }

  // Gives the connection back now.
  void release() noexcept;

 private:
  std::shared_ptr<PoolShared> pool_;
  std::uint64_t id_ = 0;
  Connection* conn_ = nullptr;
};

}  // namespace sluice::pool
