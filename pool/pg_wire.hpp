#pragma once

// PostgreSQL's frontend/backend protocol (version 3.0), the parts a query gateway needs:
// startup and authentication (trust, cleartext, MD5, SCRAM-SHA-256), the extended query
// protocol with text parameters, text-format results, errors and cancel requests. Pure
// functions over bytes, so they are tested without a server; PgConnection does the I/O.

#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pool/db_error.hpp"
#include "pool/value.hpp"

namespace sluice::pool::pg {

// Where and as whom to connect, from a `postgresql://` URL.
struct ConnectParams {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5432;
  std::string user;
  std::string password;
  std::string database;
  std::string application_name = "sluice";
};

// True for a connection string that is a PostgreSQL URL (postgres:// or postgresql://),
// which selects the native client instead of ODBC.
bool is_url(std::string_view connection_string) noexcept;

// Parses postgresql://[user[:password]@]host[:port][/database][?param=value&...], with
// percent-decoding in every part. Accepted parameters: sslmode=disable (the native client
// speaks plain TCP; TLS needs the ODBC driver), application_name, user, password, dbname,
// host, port. Throws std::invalid_argument naming the problem; the message never contains
// the password.
ConnectParams parse_url(std::string_view url);

struct Field;

// Malformed bytes from the server: the connection cannot be trusted afterwards.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds frontend messages into one buffer, so a whole request goes out in one write.
class MessageWriter {
 public:
  explicit MessageWriter(std::string& out) noexcept : out_(out) {}
  // Starts a message with a type byte (0 for the untyped startup and cancel messages).
  void begin(char type);
  void end();  // patches the length of the message begun last
  void i16(std::int16_t v);
  void i32(std::int32_t v);
  void cstr(std::string_view s);  // s and a NUL terminator
  void bytes(std::string_view s);

 private:
  std::string& out_;
  std::size_t start_ = 0;
};

void write_startup(std::string& out, const ConnectParams& p);
void write_password(std::string& out, std::string_view password);
void write_sasl_initial(std::string& out, std::string_view mechanism, std::string_view data);
void write_sasl_response(std::string& out, std::string_view data);
void write_terminate(std::string& out);
// The 16-byte request a new connection sends to cancel the query running on `pid`.
std::string cancel_request(std::int32_t pid, std::int32_t secret);

// Parse (unnamed statement) + Bind (unnamed portal, text results) + Describe + Execute + Sync
// for `sql` with `params`. `sql` must already use $n placeholders. Execute asks for all rows,
// or with a `row_limit` for at most that many: past it the server suspends the portal
// (PortalSuspended instead of CommandComplete) and Sync closes it, so the rest of a large
// result is never produced.
void write_query(std::string& out, std::string_view sql, std::span<const Param> params,
                 std::uint64_t row_limit = 0);

// The prepared-statement path: Parse (named) + Describe (statement) + Sync once, then
// Bind + Execute + Sync per run. Close (statement) frees a name; it is answered with
// CloseComplete after the next Sync.
void write_prepare(std::string& out, std::string_view name, std::string_view sql,
                   std::span<const Param> params);
void write_bind_execute(std::string& out, std::string_view name, std::span<const Param> params,
                        std::span<const Field> fields, std::uint64_t row_limit = 0);
void write_close(std::string& out, std::string_view name);
// What identifies a prepared statement: its text and its parameters' types.
std::string statement_key(std::string_view sql, std::span<const Param> params);
// Queries are prepared once per connection and reused; other statements (SET, DDL, writes)
// are not worth a cache entry.
bool worth_preparing(std::string_view sql) noexcept;

// Rewrites ODBC-style `?` placeholders to PostgreSQL's $1, $2, ... outside string literals,
// quoted identifiers, dollar-quoted strings and comments. Throws DbError(invalid_argument)
// when the number of placeholders differs from `count`.
std::string number_placeholders(std::string_view sql, std::size_t count, const std::string& source);

// Reads the fields of one backend message, bounds-checked (ProtocolError past the end).
class MessageReader {
 public:
  explicit MessageReader(std::string_view body) noexcept : body_(body) {}
  std::int16_t i16();
  std::int32_t i32();
  std::string_view cstr();
  std::string_view bytes(std::size_t n);
  std::size_t remaining() const noexcept { return body_.size() - pos_; }

 private:
  std::string_view body_;
  std::size_t pos_ = 0;
};

// The fields of an ErrorResponse or NoticeResponse: SQLSTATE, and the message with its
// detail and hint appended (what a person needs to act on it).
Diagnostic parse_error(std::string_view body);

// One result column as RowDescription describes it.
struct Field {
  ColumnInfo info;
  std::uint32_t type_oid = 0;
  bool binary = false;  // the format asked for in Bind: binary where binary_result() allows
};
std::vector<Field> parse_row_description(std::string_view body);

// The portable type and type name for a PostgreSQL type OID and type modifier.
ColumnInfo describe_type(std::string name, std::uint32_t oid, std::int32_t typmod,
                         std::int16_t typlen);

// The value of one text-format cell of type `oid`. Views point into `text`, or into
// `scratch` for bytea (decoded from hex). A cell that does not parse as its type (infinite
// dates, NaN numerics, a time zone other than UTC) is returned as its text.
Value decode_text(std::uint32_t oid, std::string_view text, std::vector<std::byte>& scratch);

// Types whose binary format is cheaper than text on both ends (no number or date printing
// in the server, no parsing here): asked for in binary on the prepared path.
bool binary_result(std::uint32_t oid) noexcept;

// The value of one binary-format cell of type `oid` (one binary_result() accepts). Views
// point into `b`; infinities and years outside 1..9999 come back as text in `scratch`.
Value decode_binary(std::uint32_t oid, std::string_view b, std::vector<std::byte>& scratch);

// The command tag's row count for INSERT, UPDATE, DELETE, MERGE; -1 for anything else.
std::int64_t rows_affected(std::string_view command_tag) noexcept;

// MD5 authentication: "md5" + md5(md5(password + user) + salt), hex.
std::string md5_password(std::string_view user, std::string_view password,
                         std::span<const unsigned char, 4> salt);

// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it: no channel
// binding, the user name taken from the startup message.
class ScramClient {
 public:
  // `nonce` empty: 24 random printable characters. PostgreSQL ignores the SCRAM user name
  // (the startup message's counts), so it is empty unless given.
  explicit ScramClient(std::string password, std::string nonce = {}, std::string user = {});
  std::string client_first() const;
  // Answers the server-first message; throws std::runtime_error if it is malformed, its
  // nonce does not extend ours, or its iteration count is unreasonable.
  std::string client_final(std::string_view server_first);
  // Checks the server's signature (proves the server knows the password, too).
  bool server_final_ok(std::string_view server_final) const;

 private:
  std::string password_;
  std::string nonce_;
  std::string user_;
  std::string auth_message_;
  std::vector<unsigned char> salted_password_;
};

}  // namespace sluice::pool::pg
