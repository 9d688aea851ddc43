#include "pool/connection.hpp"

#include "pool/db_error.hpp"

namespace sluice::pool {

asio::awaitable<void> Connection::execute_batch(std::span<BatchItem* const> items,
                                                std::size_t caller) {
  (void)caller;
  for (BatchItem* item : items) {
    // A caller that gave up before its turn is not started.
    if (item->cancel.requested()) {
      item->error = std::make_exception_ptr(DbError(
          errc::cancelled, "", {"57014", 0, "the statement was cancelled before it started"}));
      item->settled = true;
      continue;
    }
    try {
      item->result = co_await execute(item->stmt, *item->sink, item->deadline);
    } catch (...) {
      item->error = std::current_exception();
    }
    item->settled = true;
  }
}

}  // namespace sluice::pool
