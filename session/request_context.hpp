#pragma once

#include <string>

#include "pool/connection.hpp"
#include "pool/db_context.hpp"

namespace sluice::session {

// Everything known about one request, from the transport to the pool: who asked, in which
// session, for what, in which database context, by when, under which trace. It appears in
// every log line about the request (describe()). Cancellation travels beside it, as the Asio
// cancellation slot of the operation that runs the request.
struct RequestContext {
  std::string request_id;  // the JSON-RPC id, as sent
  std::string client;      // see SessionManager: the principal, or clientInfo@address
  std::string session;     // the legacy session or connection; empty when stateless
  std::string tool;
  std::string source;    // the source the tool runs on, once resolved
  pool::DbContext db;    // the database context it runs in, once resolved
  std::string trace_id;  // 32 hex digits: the caller's W3C traceparent, or minted here
  pool::Deadline deadline = pool::Deadline::max();

  // "req=7 client=claude@127.0.0.1 tool=query source=demo trace=4bf9..." for log lines.
  std::string describe() const {
    std::string s = "req=" + request_id + " client=" + client;
    if (!session.empty()) s += " session=" + session.substr(0, 12);
    if (!tool.empty()) s += " tool=" + tool;
    if (!source.empty()) s += " source=" + source;
    if (!db.database.empty()) s += " database=" + db.database;
    if (!db.schema.empty()) s += " schema=" + db.schema;
    if (!db.warehouse.empty()) s += " warehouse=" + db.warehouse;
    if (!db.role.empty()) s += " role=" + db.role;
    return s + " trace=" + trace_id;
  }
};

}  // namespace sluice::session
