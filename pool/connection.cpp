#include "pool/connection.hpp"

#include "pool/db_error.hpp"

namespace sluice::pool {

asio::awaitable<void> Connection::execute_batch(std::span<BatchItem* const> items,
                                                std::size_t caller,
                                                const std::function<void(BatchItem&)>& on_settled) {
  (void)caller;
  for (BatchItem* item : items) {
    if (item->cancel.requested()) {
      // A caller that gave up before its turn is not started.
      item->error = std::make_exception_ptr(DbError(
          errc::cancelled, "", {"57014", 0, "the statement was cancelled before it started"}));
    } else {
      try {
        item->result = co_await execute(item->stmt, *item->sink, item->deadline);
      } catch (...) {
        item->error = std::current_exception();
      }
    }
    item->settled = true;
    if (on_settled) on_settled(*item);
  }
}

}  // namespace sluice::pool
