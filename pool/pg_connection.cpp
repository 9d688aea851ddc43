#include "pool/pg_connection.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>

namespace sluice::pool {

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace {

constexpr std::size_t kInitialBuffer = 16 * 1024;
constexpr std::size_t kKeptBuffer = 1024 * 1024;        // larger buffers shrink after a statement
constexpr std::size_t kMaxMessage = 512 * 1024 * 1024;  // one row or error, far above normal
constexpr auto kGiveUpAfterCancel = 10s;
constexpr std::size_t kMaxPrepared = 64;  // prepared statements kept per connection

std::uint32_t be32(const char* p) noexcept {
  return (std::uint32_t{static_cast<unsigned char>(p[0])} << 24) |
         (std::uint32_t{static_cast<unsigned char>(p[1])} << 16) |
         (std::uint32_t{static_cast<unsigned char>(p[2])} << 8) |
         std::uint32_t{static_cast<unsigned char>(p[3])};
}

// Sends a cancel request for (pid, secret) to `server` on a new connection, waiting at most
// a second to connect. Blocking: runs on the watchdog thread.
void send_cancel_request(const tcp::endpoint& server, std::int32_t pid, std::int32_t secret) {
  const int fd =
      ::socket(server.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, server.data(), static_cast<socklen_t>(server.size())) != 0) {
    if (errno != EINPROGRESS) return;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 1000) != 1) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return;
  }
  const std::string req = pg::cancel_request(pid, secret);
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
}

}  // namespace

// The part of a connection the watchdog thread touches: which run is executing on the server,
// why each run of the current exchange was cancelled, where to send a cancel request. An
// exchange (one statement, or a pipelined batch) numbers its statements as consecutive runs.
// Shared with the watchdog's callbacks, so one that arrives after the connection is gone
// finds it detached.
struct PgLink {
  std::mutex mutex;
  tcp::endpoint server;
  std::int32_t pid = 0;
  std::int32_t secret = 0;
  int fd = -1;              // the connection's socket while it is open
  std::uint64_t run = 0;    // the last run handed out
  std::uint64_t first = 1;  // the current exchange's runs: [first, run]
  std::uint64_t front = 0;  // the run the server is executing, while `executing`
  bool executing = false;
  std::vector<CancelReason> why;  // by run - first
  int cancels_sent = 0;           // cancel requests sent during the current exchange

  // Starts an exchange of `n` runs; returns the first.
  std::uint64_t open(std::size_t n) {
    std::lock_guard lock(mutex);
    first = run + 1;
    run += n;
    why.assign(n, CancelReason::none);
    executing = false;
    cancels_sent = 0;
    return first;
  }

  // Run `r` is the one the server executes now, or will once its request is written. Unless
  // `sent` (it is on its way already), a run cancelled before this point does not start.
  // Returns why it was cancelled, or none.
  CancelReason enter(std::uint64_t r, bool sent) {
    std::lock_guard lock(mutex);
    front = r;
    executing = sent || why[r - first] == CancelReason::none;
    return why[r - first];
  }

  // Ends run `r`; returns how many cancel requests the exchange has sent so far.
  int leave() {
    std::lock_guard lock(mutex);
    executing = false;
    return cancels_sent;
  }

  CancelReason reason(std::uint64_t r) {
    std::lock_guard lock(mutex);
    return r >= first && r <= run ? why[r - first] : CancelReason::none;
  }

  // Records `reason` for run `r` (the first reason wins) and, if the server is executing that
  // run, sends it a cancel request. Returns true while the run still executes.
  bool cancel(CancelReason reason, std::uint64_t r) {
    tcp::endpoint to;
    std::int32_t p = 0;
    std::int32_t s = 0;
    {
      std::lock_guard lock(mutex);
      if (r < first || r > run) return false;
      if (why[r - first] == CancelReason::none) why[r - first] = reason;
      if (!executing || front != r || fd < 0) return false;
      ++cancels_sent;
      to = server;
      p = pid;
      s = secret;
    }
    send_cancel_request(to, p, s);
    return true;
  }

  // Shuts the socket down under a run the server does not finish: the pending read fails.
  void abort(std::uint64_t r) {
    std::lock_guard lock(mutex);
    if (r == front && executing && fd >= 0) ::shutdown(fd, SHUT_RDWR);
  }

  void detach() {
    std::lock_guard lock(mutex);
    fd = -1;
    executing = false;
  }
};

namespace {

// Cancels one run on the watchdog thread, and again after a growing pause while the server
// keeps running it: a cancel request that arrives before the query does is ignored. Gives
// up on a server that ignores them all and shuts the connection down. The first pause leaves
// a busy I/O thread time to read the answer to the first request: every extra request sent
// costs the connection (one could still be in flight when the next statement runs).
struct PgCancelRun {
  Watchdog* watchdog;
  std::shared_ptr<PgLink> link;
  std::uint64_t run;
  CancelReason why;
  std::chrono::milliseconds pause{50};
  std::chrono::milliseconds waited{0};

  void operator()() const {
    if (waited >= kGiveUpAfterCancel) {
      link->abort(run);
      return;
    }
    if (!link->cancel(why, run)) return;
    PgCancelRun again = *this;
    again.waited += pause;
    again.pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    watchdog->arm(Watchdog::Clock::now() + pause, std::move(again));
  }
};

// Connects, authenticates and waits for ReadyForQuery. Returns the server's cancel key.
asio::awaitable<std::pair<std::int32_t, std::int32_t>> handshake(tcp::socket& sock,
                                                                 const pg::ConnectParams& p,
                                                                 const std::string& source) {
  auto fail = [&source](std::string message, std::string sqlstate = "08001") -> DbError {
    return DbError(errc::connect_failed, source, {std::move(sqlstate), 0, std::move(message)});
  };
  std::string out;
  pg::write_startup(out, p);
  co_await asio::async_write(sock, asio::buffer(out), asio::use_awaitable);

  std::vector<char> in(4096);
  std::size_t have = 0;
  std::optional<pg::ScramClient> scram;
  std::pair<std::int32_t, std::int32_t> key{0, 0};
  for (;;) {
    while (have < 5 || have < 1 + be32(in.data() + 1)) {
      if (have >= 5) {
        const std::size_t need = 1 + std::size_t{be32(in.data() + 1)};
        if (need < 5 || need > 1024 * 1024) {
          throw fail("the server sent a malformed startup message: is this PostgreSQL?");
        }
        if (need > in.size()) in.resize(need);
      }
      boost::system::error_code ec;
      const std::size_t n =
          co_await sock.async_read_some(asio::buffer(in.data() + have, in.size() - have),
                                        asio::redirect_error(asio::use_awaitable, ec));
      if (ec) throw fail("the server closed the connection during startup: " + ec.message());
      have += n;
    }
    const char type = in[0];
    const std::size_t total = 1 + be32(in.data() + 1);
    const std::string body(in.data() + 5, total - 5);
    std::memmove(in.data(), in.data() + total, have - total);
    have -= total;
    pg::MessageReader r(body);
    out.clear();
    switch (type) {
      case 'R': {
        const std::int32_t code = r.i32();
        if (code == 0) break;  // AuthenticationOk
        if (code == 3) {
          pg::write_password(out, p.password);
        } else if (code == 5) {
          const std::string_view salt = r.bytes(4);
          std::array<unsigned char, 4> s{};
          std::memcpy(s.data(), salt.data(), 4);
          pg::write_password(out, pg::md5_password(p.user, p.password, s));
        } else if (code == 10) {
          bool offered = false;
          for (std::string_view m = r.cstr(); !m.empty(); m = r.cstr()) {
            offered = offered || m == "SCRAM-SHA-256";
          }
          if (!offered) throw fail("the server offers no SASL mechanism Sluice speaks");
          scram.emplace(p.password);
          pg::write_sasl_initial(out, "SCRAM-SHA-256", scram->client_first());
        } else if (code == 11) {
          if (!scram) throw fail("the server sent SASLContinue without SASL");
          pg::write_sasl_response(out, scram->client_final(r.bytes(r.remaining())));
        } else if (code == 12) {
          if (!scram || !scram->server_final_ok(r.bytes(r.remaining()))) {
            throw fail("the server's SCRAM signature is wrong: it does not know the password");
          }
        } else {
          throw fail("the server asks for an authentication method Sluice does not speak (" +
                     std::to_string(code) +
                     "); configure trust, password, md5 or scram-sha-256 for it");
        }
        if (p.password.empty() && (code == 3 || code == 5 || code == 10)) {
          throw fail("the server requires a password and the URL has none", "28P01");
        }
        if (!out.empty()) {
          co_await asio::async_write(sock, asio::buffer(out), asio::use_awaitable);
        }
        break;
      }
      case 'K':
        key.first = r.i32();
        key.second = r.i32();
        break;
      case 'E': {
        Diagnostic d = pg::parse_error(body);
        throw DbError(errc::connect_failed, source, std::move(d));
      }
      case 'Z':
        co_return key;
      case 'S':  // ParameterStatus
      case 'N':  // NoticeResponse
        break;
      default:
        throw fail(std::string("unexpected message '") + type + "' during startup");
    }
  }
}

}  // namespace

// ---- rows ----

// A DataRow as the sink sees it: cell boundaries parsed once, values decoded on access.
class PgConnection::Row final : public RowView {
 public:
  void reset(std::span<const pg::Field> fields) {
    fields_ = fields;
    scratch_.resize(fields.size());
  }

  void bind(std::string_view body) {
    pg::MessageReader r(body);
    const int n = r.i16();
    if (n != static_cast<int>(fields_.size())) throw pg::ProtocolError("DataRow column count");
    cells_.clear();
    for (int i = 0; i < n; ++i) {
      const std::int32_t len = r.i32();
      if (len < 0) {
        cells_.push_back({nullptr, 0});
      } else {
        cells_.push_back(
            {r.bytes(static_cast<std::size_t>(len)).data(), static_cast<std::size_t>(len)});
      }
    }
  }

  std::size_t size() const noexcept override { return cells_.size(); }

  Value operator[](std::size_t c) const override {
    const auto& [data, len] = cells_[c];
    if (data == nullptr) return Null{};
    const pg::Field& f = fields_[c];
    return f.binary ? pg::decode_binary(f.type_oid, std::string_view(data, len), scratch_[c])
                    : pg::decode_text(f.type_oid, std::string_view(data, len), scratch_[c]);
  }

 private:
  std::span<const pg::Field> fields_;
  std::vector<std::pair<const char*, std::size_t>> cells_;
  mutable std::vector<std::vector<std::byte>> scratch_;  // bytea, per column
};

// One statement's answer after its Bind and Execute: rows into the sink (the first result set
// only), the command tag, the first error. A prepared statement's columns are known from its
// description (`bound`, as the Bind asked for them); the unprepared path describes its portal.
class PgConnection::Answer {
 public:
  Answer(PgConnection& conn, RowSink& sink, const std::vector<pg::Field>* bound, bool has_rows)
      : conn_(conn), sink_(sink), bound_(bound), has_rows_(has_rows) {
    if (bound_ != nullptr) conn_.row_->reset(*bound_);
  }

  void on(const Message& m) {
    switch (m.type) {
      case 'T':                         // only the unprepared path describes its portal
        if (first_result_done_) break;  // only the first result set is wanted
        fields_ = pg::parse_row_description(m.body);
        conn_.row_->reset(fields_);
        send_columns(fields_);
        break;
      case 'D':
        if (first_result_done_ || stopped_ || sink_failure || error) break;
        if (!columns_sent && bound_ != nullptr) send_columns(*bound_);
        conn_.row_->bind(m.body);
        try {
          ++result.rows_fetched;
          if (!sink_.row(*conn_.row_)) {
            stopped_ = true;
            result.stopped_by_sink = true;
          }
        } catch (...) {
          sink_failure = std::current_exception();
        }
        break;
      case 'C': {
        pg::MessageReader r(m.body);
        const std::string_view tag = r.cstr();
        if (!first_result_done_) {
          if (!columns_sent && bound_ != nullptr && has_rows_) send_columns(*bound_);
          result.rows_affected = pg::rows_affected(tag);
        }
        first_result_done_ = true;
        if (tag == "DISCARD ALL" || tag == "DEALLOCATE ALL") {
          conn_.prepared_.clear();  // the server forgot every prepared statement
          conn_.to_close_.clear();
        }
        break;
      }
      case 'E':
        if (!error) error = pg::parse_error(m.body);
        break;
      case '1':  // ParseComplete
      case '2':  // BindComplete
      case 'n':  // NoData
      case 'I':  // EmptyQueryResponse
      case 's':  // PortalSuspended
        break;
      default:
        conn_.unexpected(m.type);
    }
  }

  ExecResult result;
  std::optional<Diagnostic> error;
  std::exception_ptr sink_failure;
  bool columns_sent = false;  // the sink heard of the result: the statement cannot be rerun

 private:
  void send_columns(std::span<const pg::Field> f) {
    columns_sent = true;
    if (sink_failure) return;
    try {
      std::vector<ColumnInfo> cols;
      cols.reserve(f.size());
      for (const auto& c : f) cols.push_back(c.info);
      sink_.columns(cols);
    } catch (...) {
      sink_failure = std::current_exception();
    }
  }

  PgConnection& conn_;
  RowSink& sink_;
  const std::vector<pg::Field>* bound_;
  bool has_rows_;
  std::vector<pg::Field> fields_;
  bool first_result_done_ = false;
  bool stopped_ = false;
};

// ---- backend ----

PgBackend::PgBackend(PgBackendParams params, Watchdog& watchdog)
    : source_(std::move(params.source)), params_(pg::parse_url(params.url)), watchdog_(watchdog) {
  if (source_.empty()) throw std::invalid_argument("PgBackendParams.source is empty");
}

asio::awaitable<std::unique_ptr<Connection>> PgBackend::connect(Deadline deadline) {
  using namespace asio::experimental::awaitable_operators;
  const auto ex = co_await asio::this_coro::executor;
  auto link = std::make_shared<PgLink>();
  tcp::socket sock(ex);
  asio::steady_timer timer(ex, deadline);
  auto attempt = [&]() -> asio::awaitable<void> {
    tcp::resolver resolver(ex);
    const auto endpoints = co_await resolver.async_resolve(
        params_.host, std::to_string(params_.port), asio::use_awaitable);
    const tcp::endpoint ep = co_await asio::async_connect(sock, endpoints, asio::use_awaitable);
    sock.set_option(tcp::no_delay(true));
    link->server = ep;
    const auto key = co_await handshake(sock, params_, source_);
    link->pid = key.first;
    link->secret = key.second;
  };
  // `||` waits for the first to succeed: a failed attempt must end it, so it succeeds with
  // its exception as the result.
  auto guarded = [&]() -> asio::awaitable<std::exception_ptr> {
    std::exception_ptr failure;
    try {
      co_await attempt();
    } catch (...) {
      failure = std::current_exception();
    }
    co_return failure;
  };
  std::variant<std::exception_ptr, std::monostate> outcome;
  try {
    outcome = co_await (guarded() || timer.async_wait(asio::use_awaitable));
    if (outcome.index() == 0 && std::get<0>(outcome)) std::rethrow_exception(std::get<0>(outcome));
  } catch (const DbError&) {
    throw;
  } catch (const pg::ProtocolError& e) {
    throw DbError(errc::connect_failed, source_,
                  {"08P01", 0, std::string("protocol error during startup: ") + e.what()});
  } catch (const boost::system::system_error& e) {
    throw DbError(errc::connect_failed, source_,
                  {"08001", 0,
                   "could not connect to " + params_.host + ":" + std::to_string(params_.port) +
                       ": " + e.code().message()});
  } catch (const std::exception& e) {
    throw DbError(errc::connect_failed, source_, {"08001", 0, e.what()});
  }
  if (outcome.index() == 1) {
    throw DbError(errc::connect_failed, source_,
                  {"08001", 0,
                   "connecting to " + params_.host + ":" + std::to_string(params_.port) +
                       " did not finish before the connect timeout"});
  }
  link->fd = sock.native_handle();
  co_return std::make_unique<PgConnection>(source_, std::move(sock), std::move(link), watchdog_);
}

// ---- connection ----

PgConnection::PgConnection(std::string source, tcp::socket socket, std::shared_ptr<PgLink> link,
                           Watchdog& watchdog)
    : source_(std::move(source)),
      socket_(std::move(socket)),
      link_(std::move(link)),
      watchdog_(watchdog),
      in_(kInitialBuffer),
      row_(std::make_unique<Row>()) {}

PgConnection::~PgConnection() {
  link_->detach();
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void PgConnection::lost(std::string what) {
  reusable_ = false;
  throw DbError(errc::connection_lost, source_, {"08006", 0, std::move(what)});
}

void PgConnection::unexpected(char type) {
  if (type == 'G' || type == 'H' || type == 'W') {
    // The server now expects COPY data from us, or streams it: the session cannot go on.
    reusable_ = false;
    throw DbError(errc::statement_failed, source_,
                  {"0A000", 0,
                   "COPY FROM STDIN and COPY TO STDOUT are not supported through Sluice; use "
                   "INSERT or SELECT (the connection was closed)"});
  }
  lost(std::string("unexpected message '") + type + "' from the server");
}

bool PgConnection::next(Message& m) {
  const std::size_t avail = end_ - begin_;
  if (avail < 5) return false;
  const char* p = in_.data() + begin_;
  const std::uint32_t len = be32(p + 1);
  if (len < 4 || len > kMaxMessage) lost("the server sent a malformed message");
  if (avail < 1 + std::size_t{len}) return false;
  m.type = p[0];
  m.body = std::string_view(p + 5, len - 4);
  begin_ += 1 + std::size_t{len};
  return true;
}

asio::awaitable<void> PgConnection::fill() {
  // Make room: move the unread part to the front, and grow for a message longer than the
  // buffer (its length is known once its header is in).
  if (begin_ > 0) {
    std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ >= 5) {
    const std::size_t need = 1 + std::size_t{be32(in_.data() + 1)};
    if (need > in_.size()) in_.resize(need);
  }
  if (end_ == in_.size()) in_.resize(in_.size() * 2);
  boost::system::error_code ec;
  const std::size_t n =
      co_await socket_.async_read_some(asio::buffer(in_.data() + end_, in_.size() - end_),
                                       asio::redirect_error(asio::use_awaitable, ec));
  if (ec == asio::error::operation_aborted) co_return;  // the caller cancelled
  if (ec) {
    if (link_->reason(front_run_) == CancelReason::deadline) {
      reusable_ = false;
      throw DbError(errc::statement_timeout, source_,
                    {"57014", 0,
                     "PostgreSQL did not stop the statement after its deadline; the "
                     "connection was closed"});
    }
    lost("the connection to PostgreSQL broke: " + ec.message());
  }
  end_ += n;
}

const PgConnection::Prepared* PgConnection::find_prepared(const std::string& key) {
  const auto it = prepared_.find(key);
  if (it == prepared_.end()) return nullptr;
  it->second.last_used = ++use_clock_;
  return &it->second;
}

void PgConnection::make_room() {
  if (prepared_.size() < kMaxPrepared) return;
  auto oldest = prepared_.begin();
  for (auto it = prepared_.begin(); it != prepared_.end(); ++it) {
    if (it->second.last_used < oldest->second.last_used) oldest = it;
  }
  to_close_.push_back(std::move(oldest->second.name));
  prepared_.erase(oldest);
}

const PgConnection::Prepared* PgConnection::remember(std::string key, Prepared p) {
  p.last_used = ++use_clock_;
  return &prepared_.insert_or_assign(std::move(key), std::move(p)).first->second;
}

void PgConnection::describe(Prepared& p, std::optional<Diagnostic>& error, const Message& m) {
  switch (m.type) {
    case 'T':
      p.fields = pg::parse_row_description(m.body);
      p.has_rows = true;
      for (pg::Field& f : p.fields) f.binary = pg::binary_result(f.type_oid);
      break;
    case 'E':
      if (!error) error = pg::parse_error(m.body);
      break;
    case '1':  // ParseComplete
    case '3':  // CloseComplete
    case 't':  // ParameterDescription
    case 'n':  // NoData
      break;
    default:
      unexpected(m.type);
  }
}

template <class OnCancel, class OnMessage>
asio::awaitable<void> PgConnection::read_answer(const asio::cancellation_state& cancel_state,
                                                bool& cancel_seen, OnCancel on_cancel,
                                                OnMessage on_message) {
  for (;;) {
    Message m;
    while (!next(m)) {
      if (!cancel_seen && cancel_state.cancelled() != asio::cancellation_type::none) {
        // The caller cancelled (a read ended early, or the signal came during the write):
        // the server is asked to stop, and the answer is read on to ReadyForQuery, so the
        // connection stays usable.
        cancel_seen = true;
        on_cancel();
      }
      co_await fill();
    }
    if (m.type == 'Z') co_return;
    switch (m.type) {
      case 'N':  // NoticeResponse
      case 'S':  // ParameterStatus
      case 'A':  // NotificationResponse
        break;
      default:
        on_message(m);
    }
  }
}

template <class OnMessage>
asio::awaitable<void> PgConnection::round_trip(const asio::cancellation_state& cancel_state,
                                               std::uint64_t run, bool& cancel_sent,
                                               OnMessage on_message) {
  co_await asio::async_write(
      socket_, asio::buffer(out_),
      asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  co_await read_answer(
      cancel_state, cancel_sent,
      [&] {
        watchdog_.run_soon(PgCancelRun{&watchdog_, link_, run, CancelReason::caller});
      },
      on_message);
}

asio::awaitable<ExecResult> PgConnection::execute(Statement stmt, RowSink& sink,
                                                  Deadline deadline) {
  if (!socket_.is_open() || !reusable_) lost("the connection is closed");
  const auto ex = co_await asio::this_coro::executor;
  follow(ex);
  const std::uint64_t run = link_->open(1);
  const Watchdog::Ticket timer =
      watchdog_.arm(deadline, PgCancelRun{&watchdog_, link_, run, CancelReason::deadline});
  struct Disarm {
    Watchdog& w;
    Watchdog::Ticket ticket;
    ~Disarm() { w.disarm(ticket); }
  } disarm{watchdog_, timer};

  std::string numbered;
  std::string_view sql = stmt.sql;
  if (!stmt.params.empty()) {
    numbered = pg::number_placeholders(stmt.sql, stmt.params.size(), source_);
    sql = numbered;
  }
  const bool prepare = pg::worth_preparing(sql);
  const std::string key = prepare ? pg::statement_key(sql, stmt.params) : std::string();

  // A caller that gave up before this point (say, while waiting for the connection) has
  // already signalled: the statement must not start at all.
  const asio::cancellation_state cancel_state = co_await asio::this_coro::cancellation_state;
  if (cancel_state.cancelled() != asio::cancellation_type::none) {
    link_->cancel(CancelReason::caller, run);
  }
  front_run_ = run;
  if (link_->enter(run, false) != CancelReason::none) {
    link_->leave();
    const bool deadline_passed = link_->reason(run) == CancelReason::deadline;
    throw DbError(deadline_passed ? errc::statement_timeout : errc::cancelled, source_,
                  {"57014", 0,
                   deadline_passed ? "the statement's deadline passed before it started"
                                   : "the statement was cancelled before it started"});
  }

  // A cancelled caller must not abort the reads below (the connection would be left
  // mid-answer): they end with operation_aborted, and the cancel goes to the server.
  const bool throw_if_cancelled = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);

  ExecResult result;
  std::optional<Diagnostic> error;
  std::exception_ptr sink_failure;
  std::exception_ptr failure;
  bool cancel_sent = false;
  try {
    for (int attempt = 0;; ++attempt) {
      const Prepared* prep = nullptr;
      if (prepare) {
        prep = find_prepared(key);
        if (prep == nullptr) {
          // First use on this connection: parse and describe once, then bind per run.
          make_room();
          out_.clear();
          for (const std::string& old : to_close_) pg::write_close(out_, old);
          to_close_.clear();
          Prepared p;
          p.name = "sluice_" + std::to_string(++statement_seq_);
          pg::write_prepare(out_, p.name, sql, stmt.params);
          co_await round_trip(cancel_state, run, cancel_sent,
                              [&](const Message& m) { describe(p, error, m); });
          if (error) break;
          prep = remember(key, std::move(p));
        }
        out_.clear();
        pg::write_bind_execute(out_, prep->name, stmt.params, prep->fields, stmt.row_limit);
      } else {
        out_.clear();
        pg::write_query(out_, sql, stmt.params, stmt.row_limit);
      }

      Answer answer(*this, sink, prep != nullptr ? &prep->fields : nullptr,
                    prep != nullptr && prep->has_rows);
      co_await round_trip(cancel_state, run, cancel_sent,
                          [&answer](const Message& m) { answer.on(m); });
      result = answer.result;
      error = std::move(answer.error);
      sink_failure = answer.sink_failure;
      const bool columns_sent = answer.columns_sent;
      // A prepared statement the server no longer has, or whose result type changed under
      // it (DDL since), fails at Bind before anything reached the sink: prepare it again.
      if (error && stale(*error) && prep != nullptr && attempt == 0 && !columns_sent) {
        prepared_.erase(key);
        error.reset();
        continue;
      }
      break;
    }
  } catch (const pg::ProtocolError& e) {
    reusable_ = false;
    failure =
        std::make_exception_ptr(DbError(errc::connection_lost, source_, {"08P01", 0, e.what()}));
  } catch (const DbError& e) {
    if (e.kind() == errc::connection_lost) reusable_ = false;
    failure = std::current_exception();
  } catch (const boost::system::system_error& e) {
    reusable_ = false;
    failure = std::make_exception_ptr(
        DbError(errc::connection_lost, source_,
                {"08006", 0, "writing to PostgreSQL: " + e.code().message()}));
  }
  const int cancels = link_->leave();
  const CancelReason why = link_->reason(run);
  co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
  shrink_buffer();

  // A cancel request still on its way could stop the next statement instead: only a run
  // that sent exactly one and saw it answered (57014) leaves no such request behind.
  const bool cancel_answered = error && error->sqlstate == "57014";
  if (cancels > 1 || (cancels == 1 && !cancel_answered)) reusable_ = false;

  if (failure) std::rethrow_exception(failure);
  if (auto e = outcome_error(std::move(error), why, sink_failure)) std::rethrow_exception(e);
  co_return result;
}

void PgConnection::shrink_buffer() {
  if (in_.size() > kKeptBuffer && begin_ == end_) {
    in_.assign(kInitialBuffer, '\0');
    begin_ = end_ = 0;
  }
}

std::exception_ptr PgConnection::outcome_error(std::optional<Diagnostic> error, CancelReason why,
                                               const std::exception_ptr& sink_failure) {
  if (error) {
    errc kind = classify_sqlstate(error->sqlstate);
    if (why != CancelReason::none && kind != errc::connection_lost) {
      kind = why == CancelReason::deadline ? errc::statement_timeout : errc::cancelled;
      if (why == CancelReason::deadline) {
        error->message = "statement cancelled at its deadline: " + error->message;
      }
    }
    if (kind == errc::connection_lost) reusable_ = false;
    return std::make_exception_ptr(DbError(kind, source_, std::move(*error)));
  }
  if (why == CancelReason::caller) {
    return std::make_exception_ptr(
        DbError(errc::cancelled, source_, {"57014", 0, "the statement was cancelled"}));
  }
  return sink_failure;
}

bool PgConnection::stale(const Diagnostic& error) {
  return error.sqlstate == "26000" ||
         (error.sqlstate == "0A000" && error.message.find("cached plan") != std::string::npos);
}

// The socket waits on the event loop of whoever runs statements on it: with an io_context per
// I/O thread, an answer read on another thread's loop would be handed over to the caller's
// thread, a wake-up of a second thread per statement (a lone client: 0.73x the requests per
// second). Moving it costs two epoll_ctl calls, and only when the caller's loop is another
// one than last time. Nothing is pending on the socket between statements.
void PgConnection::follow(const asio::any_io_executor& caller) {
  auto& here = asio::query(socket_.get_executor(), asio::execution::context);
  if (&here == &asio::query(caller, asio::execution::context) || !socket_.is_open()) return;
  boost::system::error_code ec;
  auto moved = move_socket(socket_, caller, ec);
  if (ec && socket_.is_open()) return;  // not released: it stays, and its next read tells
  if (ec) reusable_ = false;            // released but not taken: the connection is gone
  socket_ = std::move(moved);
}

asio::awaitable<void> PgConnection::execute_batch(
    std::span<BatchItem* const> items, std::size_t caller,
    const std::function<void(BatchItem&)>& on_settled) {
  const auto ex = co_await asio::this_coro::executor;
  follow(ex);
  co_await run_batch(items, caller, on_settled, true);
}

asio::awaitable<void> PgConnection::run_batch(std::span<BatchItem* const> items, std::size_t caller,
                                              const std::function<void(BatchItem&)>& on_settled,
                                              bool may_retry) {
  const std::size_t n = items.size();
  // Once an item is handed back (on_settled), its caller may resume and free it: it is not
  // touched again.
  std::vector<char> handed_back(n, 0);
  auto hand_back = [&](std::size_t i) {
    BatchItem& item = *items[i];
    item.cancel.disarm();
    item.settled = true;
    handed_back[i] = 1;
    if (on_settled) on_settled(item);
  };
  auto settle = [&](std::size_t i, std::exception_ptr e) {
    items[i]->error = std::move(e);
    hand_back(i);
  };
  auto settle_rest = [&](const std::exception_ptr& e) {
    // Each its own copy: the items' callers read and free their errors on their own threads.
    for (std::size_t i = 0; i < n; ++i) {
      if (!handed_back[i]) settle(i, copy_error(e, errc::connection_lost, source_));
    }
  };
  if (n == 0) co_return;
  if (!socket_.is_open() || !reusable_) {
    settle_rest(std::make_exception_ptr(
        DbError(errc::connection_lost, source_, {"08006", 0, "the connection is closed"})));
    co_return;
  }

  // Every statement is a run of its own, with its own deadline and caller.
  const std::uint64_t first = link_->open(n);
  struct Disarm {
    Watchdog& w;
    std::span<BatchItem* const> items;
    const std::vector<char>& handed_back;
    std::vector<Watchdog::Ticket> timers;
    ~Disarm() {
      for (const Watchdog::Ticket& t : timers) w.disarm(t);
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (!handed_back[i]) items[i]->cancel.disarm();
      }
    }
  } disarm{watchdog_, items, handed_back, {}};
  disarm.timers.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    disarm.timers.push_back(watchdog_.arm(
        items[i]->deadline, PgCancelRun{&watchdog_, link_, first + i, CancelReason::deadline}));
    items[i]->cancel.arm([w = &watchdog_, link = link_, r = first + i] {
      w->run_soon(PgCancelRun{w, link, r, CancelReason::caller});
    });
  }

  // One write for all.
  struct Plan {
    std::string numbered;      // the text with $n placeholders, when it has parameters
    Prepared* prep = nullptr;  // the prepared statement it binds, if any
    bool parses = false;       // its request starts with that statement's Parse and Describe
    bool fresh = false;        // that statement was parsed in this batch: it answers in text
  };
  std::vector<Plan> plans(n);
  out_.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const Statement& stmt = items[i]->stmt;
    Plan& plan = plans[i];
    std::string_view sql = stmt.sql;
    if (!stmt.params.empty()) {
      try {
        plan.numbered = pg::number_placeholders(stmt.sql, stmt.params.size(), source_);
      } catch (...) {
        settle(i, std::current_exception());  // never sent
        continue;
      }
      sql = plan.numbered;
    }
    if (!pg::worth_preparing(sql)) {
      pg::write_query(out_, sql, stmt.params, stmt.row_limit);
      continue;
    }
    std::string key = pg::statement_key(sql, stmt.params);
    auto it = prepared_.find(key);
    if (it == prepared_.end()) {
      // Evicts the least recently used, never one bound earlier in this batch (each was just
      // used, and a batch holds fewer statements than the cap).
      make_room();
      for (const std::string& old : to_close_) pg::write_close(out_, old);
      to_close_.clear();
      Prepared p;
      p.name = "sluice_" + std::to_string(++statement_seq_);
      p.pending = true;
      pg::write_prepare(out_, p.name, sql, stmt.params);
      plan.parses = true;
      it = prepared_.emplace(std::move(key), std::move(p)).first;
    }
    it->second.last_used = ++use_clock_;
    plan.prep = &it->second;
    plan.fresh = it->second.pending;
    pg::write_bind_execute(out_, plan.prep->name, stmt.params,
                           plan.fresh ? std::span<const pg::Field>() : plan.prep->fields,
                           stmt.row_limit);
  }

  const asio::cancellation_state cancel_state = co_await asio::this_coro::cancellation_state;
  const bool throw_if_cancelled = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  bool cancel_seen = false;
  auto on_cancel = [&] {
    if (caller < n) items[caller]->cancel.request();
  };

  int answered = 0;  // cancel requests that stopped a statement (57014)
  struct Retry {
    std::size_t item;
    Diagnostic error;
  };
  std::vector<Retry> retries;
  std::exception_ptr failure;
  try {
    co_await asio::async_write(
        socket_, asio::buffer(out_),
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
    for (std::size_t i = 0; i < n; ++i) {
      if (handed_back[i]) continue;  // never sent
      BatchItem& item = *items[i];
      Plan& plan = plans[i];
      const std::uint64_t run = first + i;
      front_run_ = run;
      // The server gets to this statement now; one cancelled while it waited its turn is
      // cancelled now.
      const CancelReason early = link_->enter(run, true);
      if (early != CancelReason::none) {
        watchdog_.run_soon(PgCancelRun{&watchdog_, link_, run, early});
      }
      if (plan.parses) {
        Prepared& p = *plan.prep;
        co_await read_answer(cancel_state, cancel_seen, on_cancel,
                             [&](const Message& m) { describe(p, p.parse_error, m); });
        if (!p.parse_error) p.pending = false;
      }
      std::vector<pg::Field> text;  // a statement parsed in this batch was bound for text
      const std::vector<pg::Field>* bound = nullptr;
      if (plan.prep != nullptr) {
        bound = &plan.prep->fields;
        if (plan.fresh) {
          text = plan.prep->fields;
          for (pg::Field& f : text) f.binary = false;
          bound = &text;
        }
      }
      Answer answer(*this, *item.sink, bound, plan.prep != nullptr && plan.prep->has_rows);
      co_await read_answer(cancel_state, cancel_seen, on_cancel,
                           [&answer](const Message& m) { answer.on(m); });
      const int cancels = link_->leave();
      const CancelReason why = link_->reason(run);

      std::optional<Diagnostic> error = std::move(answer.error);
      // Its Bind failed because the Parse did: the Parse's error is the one that tells.
      if (plan.prep != nullptr && plan.prep->parse_error) error = plan.prep->parse_error;
      if (error && error->sqlstate == "57014") ++answered;
      const bool went_stale = error && plan.prep != nullptr && !plan.fresh && stale(*error);
      // Stopped by a cancel request meant for a statement before it.
      const bool neighbour =
          error && error->sqlstate == "57014" && why == CancelReason::none && cancels > 0;
      if ((went_stale || neighbour) && !answer.columns_sent) {
        if (went_stale) plan.prep->pending = true;  // forgotten below, and prepared again
        retries.push_back({i, std::move(*error)});
        continue;
      }
      if (auto e = outcome_error(std::move(error), why, answer.sink_failure)) {
        settle(i, std::move(e));
      } else {
        item.result = answer.result;
        hand_back(i);
      }
    }
  } catch (const pg::ProtocolError& e) {
    reusable_ = false;
    failure =
        std::make_exception_ptr(DbError(errc::connection_lost, source_, {"08P01", 0, e.what()}));
  } catch (const DbError& e) {
    if (e.kind() == errc::connection_lost || e.kind() == errc::statement_timeout) {
      reusable_ = false;
    }
    failure = std::current_exception();
  } catch (const boost::system::system_error& e) {
    reusable_ = false;
    failure = std::make_exception_ptr(
        DbError(errc::connection_lost, source_,
                {"08006", 0, "writing to PostgreSQL: " + e.code().message()}));
  }
  const int cancels = link_->leave();
  co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
  // A cancel request still on its way could stop a later statement: only as many sent as
  // answered leaves none behind.
  if (cancels > answered) reusable_ = false;
  shrink_buffer();
  // Forget statements whose Parse failed, that went stale, or whose answer never came.
  std::erase_if(prepared_, [](const auto& entry) { return entry.second.pending; });

  if (failure) {
    settle_rest(failure);
    co_return;
  }
  if (retries.empty()) co_return;
  if (may_retry && reusable_) {
    std::vector<BatchItem*> again;
    std::size_t again_caller = again.max_size();
    for (const Retry& r : retries) {
      if (r.item == caller) again_caller = again.size();
      again.push_back(items[r.item]);
      handed_back[r.item] = 1;  // to the second batch, which hands it back
    }
    co_await run_batch(again, again_caller, on_settled, false);
    co_return;
  }
  for (Retry& r : retries) {
    const errc kind = classify_sqlstate(r.error.sqlstate);
    if (r.error.sqlstate == "57014") {
      r.error.message =
          "cancelled by a cancel request meant for the statement before it on the same "
          "connection; retry it (" +
          r.error.message + ")";
    }
    settle(r.item, std::make_exception_ptr(DbError(kind, source_, std::move(r.error))));
  }
}

asio::awaitable<void> PgConnection::validate(Deadline deadline) {
  DiscardRows sink;
  const Statement ping{"SELECT 1", {}};
  co_await execute(ping, sink, deadline);
}

asio::awaitable<void> PgConnection::close() noexcept {
  link_->detach();
  if (!socket_.is_open()) co_return;
  try {
    std::string bye;
    pg::write_terminate(bye);
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    if (!ec) (void)::send(socket_.native_handle(), bye.data(), bye.size(), MSG_NOSIGNAL);
  } catch (...) {
  }
  boost::system::error_code ignored;
  socket_.close(ignored);
  co_return;
}

}  // namespace sluice::pool
