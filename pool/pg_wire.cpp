#include "pool/pg_wire.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <variant>

namespace sluice::pool::pg {
namespace {

// PostgreSQL type OIDs (src/include/catalog/pg_type.dat); stable across versions.
enum Oid : std::uint32_t {
  kBool = 16,
  kBytea = 17,
  kChar = 18,
  kName = 19,
  kInt8 = 20,
  kInt2 = 21,
  kInt4 = 23,
  kText = 25,
  kOid = 26,
  kJson = 114,
  kXml = 142,
  kFloat4 = 700,
  kFloat8 = 701,
  kBpchar = 1042,
  kVarchar = 1043,
  kDate = 1082,
  kTime = 1083,
  kTimestamp = 1114,
  kTimestamptz = 1184,
  kInterval = 1186,
  kTimetz = 1266,
  kNumeric = 1700,
  kUuid = 2950,
  kJsonb = 3802,
};

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, std::string_view what) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      throw std::invalid_argument("PostgreSQL URL: bad percent-encoding in the " +
                                  std::string(what));
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::uint16_t parse_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > 65535) {
    throw std::invalid_argument("PostgreSQL URL: port must be 1..65535, got '" + std::string(s) +
                                "'");
  }
  return static_cast<std::uint16_t>(v);
}

std::string base64(std::span<const unsigned char> in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), in.data(),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::vector<unsigned char> unbase64(std::string_view in) {
  if (in.size() % 4 != 0) throw std::runtime_error("SCRAM: bad base64 from the server");
  std::vector<unsigned char> out(3 * in.size() / 4);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) throw std::runtime_error("SCRAM: bad base64 from the server");
  std::size_t len = static_cast<std::size_t>(n);
  if (!in.empty() && in.back() == '=') --len;  // EVP_DecodeBlock counts padding as zeros
  if (in.size() >= 2 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest hmac(std::span<const unsigned char> key, std::string_view msg) {
  Digest out{};
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out.data(), &len);
  return out;
}

// The value of attribute `name` in a SCRAM message "a=...,b=...".
std::string_view scram_attr(std::string_view msg, char name) {
  std::size_t pos = 0;
  while (pos < msg.size()) {
    std::size_t end = msg.find(',', pos);
    if (end == std::string_view::npos) end = msg.size();
    const std::string_view part = msg.substr(pos, end - pos);
    if (part.size() >= 2 && part[0] == name && part[1] == '=') return part.substr(2);
    pos = end + 1;
  }
  return {};
}

template <class Int>
bool parse_int(std::string_view s, Int& out) noexcept {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

// "YYYY-MM-DD" (ISO DateStyle, years 1..9999 AD); false for anything else (BC, infinity).
bool parse_date(std::string_view s, Date& d) noexcept {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  int y = 0;
  unsigned m = 0;
  unsigned day = 0;
  if (!parse_int(s.substr(0, 4), y) || !parse_int(s.substr(5, 2), m) ||
      !parse_int(s.substr(8, 2), day)) {
    return false;
  }
  d = Date{y, static_cast<std::uint8_t>(m), static_cast<std::uint8_t>(day)};
  return true;
}

// "HH:MM:SS[.ffffff]".
bool parse_time(std::string_view s, TimeOfDay& t) noexcept {
  if (s.size() < 8 || s[2] != ':' || s[5] != ':') return false;
  unsigned h = 0;
  unsigned m = 0;
  unsigned sec = 0;
  if (!parse_int(s.substr(0, 2), h) || !parse_int(s.substr(3, 2), m) ||
      !parse_int(s.substr(6, 2), sec)) {
    return false;
  }
  std::uint32_t nanos = 0;
  if (s.size() > 8) {
    if (s[8] != '.' || s.size() > 18 || s.size() == 9) return false;
    std::uint32_t scale = 100'000'000;
    for (char c : s.substr(9)) {
      if (c < '0' || c > '9') return false;
      nanos += static_cast<std::uint32_t>(c - '0') * scale;
      scale /= 10;
    }
  }
  t = TimeOfDay{static_cast<std::uint8_t>(h), static_cast<std::uint8_t>(m),
                static_cast<std::uint8_t>(sec), nanos};
  return true;
}

void append_2(std::string& out, unsigned v) {
  out += static_cast<char>('0' + v / 10 % 10);
  out += static_cast<char>('0' + v % 10);
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, p);
}

void append_date(std::string& out, const Date& d) {
  // Year 0 is 1 BC in the proleptic Gregorian calendar; PostgreSQL writes it that way.
  const bool bc = d.year <= 0;
  const std::int64_t y = bc ? 1 - static_cast<std::int64_t>(d.year) : d.year;
  if (y < 1000) out.append(y < 10 ? "000" : y < 100 ? "00" : "0");
  append_int(out, y);
  out += '-';
  append_2(out, d.month);
  out += '-';
  append_2(out, d.day);
  if (bc) out += " BC";
}

void append_time(std::string& out, const TimeOfDay& t) {
  append_2(out, t.hour);
  out += ':';
  append_2(out, t.minute);
  out += ':';
  append_2(out, t.second);
  if (t.nanosecond != 0) {
    char frac[10];
    std::uint32_t n = t.nanosecond;
    for (int i = 8; i >= 0; --i) {
      frac[i] = static_cast<char>('0' + n % 10);
      n /= 10;
    }
    int len = 9;
    while (len > 0 && frac[len - 1] == '0') --len;
    out += '.';
    out.append(frac, static_cast<std::size_t>(len));
  }
}

// A parameter's type OID (0: let the server infer it from the statement) and format.
struct ParamType {
  std::uint32_t oid;
  bool binary;
};

ParamType param_type(const Param& p) noexcept {
  struct V {
    ParamType operator()(const Null&) const { return {0, false}; }
    ParamType operator()(bool) const { return {kBool, false}; }
    ParamType operator()(std::int64_t) const { return {kInt8, false}; }
    ParamType operator()(double) const { return {kFloat8, false}; }
    ParamType operator()(const Decimal&) const { return {kNumeric, false}; }
    ParamType operator()(const std::string&) const { return {0, false}; }
    ParamType operator()(const std::vector<std::byte>&) const { return {kBytea, true}; }
    ParamType operator()(const Date&) const { return {kDate, false}; }
    ParamType operator()(const TimeOfDay&) const { return {kTime, false}; }
    ParamType operator()(const Timestamp&) const { return {kTimestamp, false}; }
  };
  return std::visit(V{}, p);
}

// Appends a parameter's value (text format, bytea binary) without its length.
void append_param(std::string& out, const Param& p) {
  struct V {
    std::string& out;
    void operator()(const Null&) const {}
    void operator()(bool b) const { out += b ? 't' : 'f'; }
    void operator()(std::int64_t v) const { append_int(out, v); }
    void operator()(double v) const {
      if (std::isnan(v)) {
        out += "NaN";
      } else if (std::isinf(v)) {
        out += v > 0 ? "Infinity" : "-Infinity";
      } else {
        char buf[32];
        auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, p);
      }
    }
    void operator()(const Decimal& d) const { out += d.digits; }
    void operator()(const std::string& s) const { out += s; }
    void operator()(const std::vector<std::byte>& b) const {
      out.append(reinterpret_cast<const char*>(b.data()), b.size());
    }
    void operator()(const Date& d) const { append_date(out, d); }
    void operator()(const TimeOfDay& t) const { append_time(out, t); }
    void operator()(const Timestamp& ts) const {
      const bool bc = ts.date.year <= 0;
      append_date(out, ts.date);
      if (bc) out.resize(out.size() - 3);  // " BC" goes after the time
      out += ' ';
      append_time(out, ts.time);
      if (ts.date.year <= 0) out += " BC";
    }
  };
  std::visit(V{out}, p);
}

}  // namespace

bool is_url(std::string_view cs) noexcept {
  return cs.starts_with("postgresql://") || cs.starts_with("postgres://");
}

ConnectParams parse_url(std::string_view url) {
  if (!is_url(url)) {
    throw std::invalid_argument("PostgreSQL URL must start with postgresql:// or postgres://");
  }
  std::string_view rest = url.substr(url.find("://") + 3);
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  ConnectParams p;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    p.user = percent_decode(userinfo.substr(0, colon), "user name");
    if (colon != std::string_view::npos) {
      p.password = percent_decode(userinfo.substr(colon + 1), "password");
    }
  }
  std::string_view host = rest;
  if (host.starts_with('[')) {  // [::1]:5432
    const auto close = host.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("PostgreSQL URL: unclosed [");
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') throw std::invalid_argument("PostgreSQL URL: bad host");
      p.port = parse_port(host.substr(close + 2));
    }
    host = host.substr(1, close - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    p.port = parse_port(host.substr(colon + 1));
    host = host.substr(0, colon);
  }
  if (!host.empty()) p.host = percent_decode(host, "host");
  if (host.find(',') != std::string_view::npos) {
    throw std::invalid_argument("PostgreSQL URL: several hosts are not supported");
  }
  p.database = percent_decode(path, "database name");
  std::string sslmode = "disable";
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = kv.find('=');
    const std::string key = percent_decode(kv.substr(0, eq), "parameter name");
    const std::string value =
        eq == std::string_view::npos ? std::string{} : percent_decode(kv.substr(eq + 1), key);
    if (key == "sslmode") {
      sslmode = value;
    } else if (key == "application_name") {
      p.application_name = value;
    } else if (key == "user") {
      p.user = value;
    } else if (key == "password") {
      p.password = value;
    } else if (key == "dbname") {
      p.database = value;
    } else if (key == "host") {
      p.host = value;
    } else if (key == "port") {
      p.port = parse_port(value);
    } else if (key == "connect_timeout") {
      // The pool's connect deadline governs; accepted for compatibility with libpq URLs.
    } else {
      throw std::invalid_argument("PostgreSQL URL: unknown parameter '" + key +
                                  "' (known: sslmode, application_name, user, password, "
                                  "dbname, host, port, connect_timeout)");
    }
  }
  if (sslmode != "disable" && sslmode != "allow" && sslmode != "prefer") {
    throw std::invalid_argument("PostgreSQL URL: sslmode=" + sslmode +
                                " needs TLS, which the native client does not speak; use "
                                "sslmode=disable on a trusted network, or an ODBC connection "
                                "string (Driver={PostgreSQL Unicode};SSLMode=" +
                                sslmode + ";...)");
  }
  if (p.user.empty()) throw std::invalid_argument("PostgreSQL URL: no user name");
  if (p.database.empty()) p.database = p.user;
  return p;
}

// ---- frontend messages ----

void MessageWriter::begin(char type) {
  if (type != 0) out_ += type;
  start_ = out_.size();
  out_.append(4, '\0');
}

void MessageWriter::end() {
  const auto len = static_cast<std::uint32_t>(out_.size() - start_);
  out_[start_] = static_cast<char>(len >> 24);
  out_[start_ + 1] = static_cast<char>(len >> 16);
  out_[start_ + 2] = static_cast<char>(len >> 8);
  out_[start_ + 3] = static_cast<char>(len);
}

void MessageWriter::i16(std::int16_t v) {
  const auto u = static_cast<std::uint16_t>(v);
  out_ += static_cast<char>(u >> 8);
  out_ += static_cast<char>(u);
}

void MessageWriter::i32(std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  out_ += static_cast<char>(u >> 24);
  out_ += static_cast<char>(u >> 16);
  out_ += static_cast<char>(u >> 8);
  out_ += static_cast<char>(u);
}

void MessageWriter::cstr(std::string_view s) {
  out_ += s;
  out_ += '\0';
}

void MessageWriter::bytes(std::string_view s) {
  out_ += s;
}

void write_startup(std::string& out, const ConnectParams& p) {
  MessageWriter w(out);
  w.begin(0);
  w.i32(196608);  // protocol 3.0
  const std::pair<std::string_view, std::string_view> params[] = {
      {"user", p.user},
      {"database", p.database},
      {"application_name", p.application_name},
      {"client_encoding", "UTF8"},
      {"DateStyle", "ISO, YMD"},
      {"TimeZone", "UTC"},
      {"extra_float_digits", "1"},
  };
  for (const auto& [k, v] : params) {
    w.cstr(k);
    w.cstr(v);
  }
  w.cstr("");
  w.end();
}

void write_password(std::string& out, std::string_view password) {
  MessageWriter w(out);
  w.begin('p');
  w.cstr(password);
  w.end();
}

void write_sasl_initial(std::string& out, std::string_view mechanism, std::string_view data) {
  MessageWriter w(out);
  w.begin('p');
  w.cstr(mechanism);
  w.i32(static_cast<std::int32_t>(data.size()));
  w.bytes(data);
  w.end();
}

void write_sasl_response(std::string& out, std::string_view data) {
  MessageWriter w(out);
  w.begin('p');
  w.bytes(data);
  w.end();
}

void write_terminate(std::string& out) {
  MessageWriter w(out);
  w.begin('X');
  w.end();
}

std::string cancel_request(std::int32_t pid, std::int32_t secret) {
  std::string out;
  MessageWriter w(out);
  w.begin(0);
  w.i32(80877102);  // the cancel request code
  w.i32(pid);
  w.i32(secret);
  w.end();
  return out;
}

namespace {

std::int16_t param_count(std::span<const Param> params) {
  if (params.size() > 65535) throw std::invalid_argument("more than 65535 parameters");
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(params.size()));
}

void write_parse(MessageWriter& w, std::string_view name, std::string_view sql,
                 std::span<const Param> params) {
  w.begin('P');
  w.cstr(name);
  w.cstr(sql);
  w.i16(param_count(params));
  for (const Param& p : params) w.i32(static_cast<std::int32_t>(param_type(p).oid));
  w.end();
}

// Bind (unnamed portal) of `statement` with `params`; results in text unless `fields`
// says which come in binary.
void write_bind(std::string& out, MessageWriter& w, std::string_view statement,
                std::span<const Param> params, std::span<const Field> fields = {}) {
  const std::int16_t n = param_count(params);
  w.begin('B');
  w.cstr("");
  w.cstr(statement);
  w.i16(n);
  for (const Param& p : params) w.i16(param_type(p).binary ? 1 : 0);
  w.i16(n);
  for (const Param& p : params) {
    if (std::holds_alternative<Null>(p)) {
      w.i32(-1);
      continue;
    }
    const std::size_t len_at = out.size();
    w.i32(0);
    append_param(out, p);
    const auto len = static_cast<std::uint32_t>(out.size() - len_at - 4);
    out[len_at] = static_cast<char>(len >> 24);
    out[len_at + 1] = static_cast<char>(len >> 16);
    out[len_at + 2] = static_cast<char>(len >> 8);
    out[len_at + 3] = static_cast<char>(len);
  }
  const bool any_binary =
      std::any_of(fields.begin(), fields.end(), [](const Field& f) { return f.binary; });
  if (!any_binary) {
    w.i16(0);  // all text
  } else {
    w.i16(static_cast<std::int16_t>(fields.size()));
    for (const Field& f : fields) w.i16(f.binary ? 1 : 0);
  }
  w.end();
}

void write_execute_sync(MessageWriter& w, std::uint64_t row_limit) {
  w.begin('E');  // Execute the unnamed portal: all rows (0), or at most row_limit
  w.cstr("");
  w.i32(static_cast<std::int32_t>(std::min<std::uint64_t>(row_limit, INT32_MAX)));
  w.end();
  w.begin('S');
  w.end();
}

}  // namespace

void write_query(std::string& out, std::string_view sql, std::span<const Param> params,
                 std::uint64_t row_limit) {
  MessageWriter w(out);
  write_parse(w, "", sql, params);
  write_bind(out, w, "", params);
  w.begin('D');  // Describe the portal
  w.bytes(std::string_view("P\0", 2));
  w.end();
  write_execute_sync(w, row_limit);
}

void write_prepare(std::string& out, std::string_view name, std::string_view sql,
                   std::span<const Param> params) {
  MessageWriter w(out);
  write_parse(w, name, sql, params);
  w.begin('D');  // Describe the statement: its parameter and result types
  w.bytes("S");
  w.cstr(name);
  w.end();
  w.begin('S');
  w.end();
}

void write_bind_execute(std::string& out, std::string_view name, std::span<const Param> params,
                        std::span<const Field> fields, std::uint64_t row_limit) {
  MessageWriter w(out);
  write_bind(out, w, name, params, fields);
  write_execute_sync(w, row_limit);
}

void write_close(std::string& out, std::string_view name) {
  MessageWriter w(out);
  w.begin('C');
  w.bytes("S");
  w.cstr(name);
  w.end();
}

std::string statement_key(std::string_view sql, std::span<const Param> params) {
  std::string key(sql);
  key += '\0';
  for (const Param& p : params) {
    const ParamType t = param_type(p);
    key.append(reinterpret_cast<const char*>(&t.oid), sizeof t.oid);
  }
  return key;
}

bool worth_preparing(std::string_view sql) noexcept {
  std::size_t i = 0;
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  auto starts = [&](std::string_view word) {
    if (sql.size() - i < word.size()) return false;
    for (std::size_t k = 0; k < word.size(); ++k) {
      if (std::toupper(static_cast<unsigned char>(sql[i + k])) != word[k]) return false;
    }
    return sql.size() - i == word.size() ||
           !std::isalnum(static_cast<unsigned char>(sql[i + word.size()]));
  };
  return sql.size() <= 16 * 1024 &&
         (starts("SELECT") || starts("WITH") || starts("VALUES") || starts("TABLE"));
}

std::string number_placeholders(std::string_view sql, std::size_t count,
                                const std::string& source) {
  std::string out;
  out.reserve(sql.size() + 2 * count);
  std::size_t n = 0;
  std::size_t i = 0;
  auto copy_until = [&](std::string_view close) {
    const auto end = sql.find(close, i);
    const std::size_t stop = end == std::string_view::npos ? sql.size() : end + close.size();
    out.append(sql.substr(i, stop - i));
    i = stop;
  };
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      // A literal or quoted identifier; a doubled quote inside is part of it. E'..' strings
      // may escape a quote with a backslash.
      const bool escapes = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e');
      out += c;
      ++i;
      while (i < sql.size()) {
        const char d = sql[i];
        out += d;
        ++i;
        if (escapes && d == '\\' && i < sql.size()) {
          out += sql[i++];
        } else if (d == c) {
          if (i < sql.size() && sql[i] == c) {
            out += sql[i++];
          } else {
            break;
          }
        }
      }
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      copy_until("\n");
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      copy_until("*/");
    } else if (c == '$' && (i == 0 || !(std::isalnum(static_cast<unsigned char>(sql[i - 1])) ||
                                        sql[i - 1] == '_'))) {
      // $tag$ ... $tag$ (a dollar-quoted string), or $n: copied as is.
      std::size_t j = i + 1;
      while (j < sql.size() &&
             (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_')) {
        ++j;
      }
      if (j < sql.size() && sql[j] == '$' &&
          !(j > i + 1 && std::isdigit(static_cast<unsigned char>(sql[i + 1])))) {
        const std::string_view tag = sql.substr(i, j - i + 1);
        out.append(tag);
        i = j + 1;
        copy_until(tag);
      } else {
        out.append(sql.substr(i, j - i));
        i = j;
      }
    } else if (c == '?') {
      out += '$';
      append_int(out, static_cast<std::int64_t>(++n));
      ++i;
    } else {
      out += c;
      ++i;
    }
  }
  if (n != count) {
    throw DbError(errc::invalid_argument, source,
                  {"07002", 0,
                   "the statement has " + std::to_string(n) + " placeholders but " +
                       std::to_string(count) + " parameters were given"});
  }
  return out;
}

// ---- backend messages ----

std::int16_t MessageReader::i16() {
  const std::string_view b = bytes(2);
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(
      (static_cast<unsigned char>(b[0]) << 8) | static_cast<unsigned char>(b[1])));
}

std::int32_t MessageReader::i32() {
  const std::string_view b = bytes(4);
  return static_cast<std::int32_t>((std::uint32_t{static_cast<unsigned char>(b[0])} << 24) |
                                   (std::uint32_t{static_cast<unsigned char>(b[1])} << 16) |
                                   (std::uint32_t{static_cast<unsigned char>(b[2])} << 8) |
                                   std::uint32_t{static_cast<unsigned char>(b[3])});
}

std::string_view MessageReader::cstr() {
  const auto end = body_.find('\0', pos_);
  if (end == std::string_view::npos) throw ProtocolError("unterminated string in a message");
  const std::string_view s = body_.substr(pos_, end - pos_);
  pos_ = end + 1;
  return s;
}

std::string_view MessageReader::bytes(std::size_t n) {
  if (n > remaining()) throw ProtocolError("message shorter than its fields");
  const std::string_view s = body_.substr(pos_, n);
  pos_ += n;
  return s;
}

Diagnostic parse_error(std::string_view body) {
  Diagnostic d;
  std::string_view detail;
  std::string_view hint;
  MessageReader r(body);
  while (r.remaining() > 0) {
    const std::string_view code = r.bytes(1);
    if (code[0] == '\0') break;
    const std::string_view value = r.cstr();
    switch (code[0]) {
      case 'C':
        d.sqlstate = value;
        break;
      case 'M':
        d.message = value;
        break;
      case 'D':
        detail = value;
        break;
      case 'H':
        hint = value;
        break;
      default:
        break;
    }
  }
  if (!detail.empty()) d.message.append(" (").append(detail).append(")");
  if (!hint.empty()) d.message.append("; hint: ").append(hint);
  return d;
}

std::vector<Field> parse_row_description(std::string_view body) {
  MessageReader r(body);
  const int n = r.i16();
  if (n < 0) throw ProtocolError("negative column count");
  std::vector<Field> fields;
  fields.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::string_view name = r.cstr();
    r.i32();  // table OID
    r.i16();  // column number
    const auto oid = static_cast<std::uint32_t>(r.i32());
    const std::int16_t typlen = r.i16();
    const std::int32_t typmod = r.i32();
    r.i16();  // format: text, as Bind asked
    fields.push_back(Field{describe_type(std::string(name), oid, typmod, typlen), oid});
  }
  return fields;
}

ColumnInfo describe_type(std::string name, std::uint32_t oid, std::int32_t typmod,
                         std::int16_t typlen) {
  ColumnInfo c;
  c.name = std::move(name);
  auto set = [&c](ColumnType t, std::string_view db) {
    c.type = t;
    c.database_type = db;
  };
  switch (oid) {
    case kBool:
      set(ColumnType::boolean, "bool");
      break;
    case kInt2:
      set(ColumnType::integer, "int2");
      c.size = 5;
      break;
    case kInt4:
      set(ColumnType::integer, "int4");
      c.size = 10;
      break;
    case kInt8:
      set(ColumnType::integer, "int8");
      c.size = 19;
      break;
    case kOid:
      set(ColumnType::integer, "oid");
      c.size = 10;
      break;
    case kFloat4:
      set(ColumnType::floating, "float4");
      c.size = 7;
      break;
    case kFloat8:
      set(ColumnType::floating, "float8");
      c.size = 15;
      break;
    case kNumeric:
      set(ColumnType::decimal, "numeric");
      if (typmod >= 4) {
        c.size = static_cast<std::size_t>(((typmod - 4) >> 16) & 0xffff);
        c.scale = static_cast<std::int16_t>((typmod - 4) & 0xffff);
      }
      break;
    case kText:
      set(ColumnType::text, "text");
      break;
    case kVarchar:
      set(ColumnType::text, "varchar");
      if (typmod >= 4) c.size = static_cast<std::size_t>(typmod - 4);
      break;
    case kBpchar:
      set(ColumnType::text, "bpchar");
      if (typmod >= 4) c.size = static_cast<std::size_t>(typmod - 4);
      break;
    case kChar:
      set(ColumnType::text, "char");
      c.size = 1;
      break;
    case kName:
      set(ColumnType::text, "name");
      c.size = 63;
      break;
    case kJson:
      set(ColumnType::text, "json");
      break;
    case kJsonb:
      set(ColumnType::text, "jsonb");
      break;
    case kXml:
      set(ColumnType::text, "xml");
      break;
    case kUuid:
      set(ColumnType::text, "uuid");
      c.size = 36;
      break;
    case kBytea:
      set(ColumnType::binary, "bytea");
      break;
    case kDate:
      set(ColumnType::date, "date");
      break;
    case kTime:
      set(ColumnType::time, "time");
      break;
    case kTimestamp:
      set(ColumnType::timestamp, "timestamp");
      break;
    case kTimestamptz:
      // The session runs in UTC (see write_startup): values are UTC timestamps.
      set(ColumnType::timestamp, "timestamptz");
      break;
    case kInterval:
      set(ColumnType::unknown, "interval");
      break;
    case kTimetz:
      set(ColumnType::unknown, "timetz");
      break;
    default:
      set(ColumnType::unknown, "oid " + std::to_string(oid));
      if (typlen > 0) c.size = static_cast<std::size_t>(typlen);
      break;
  }
  return c;
}

Value decode_text(std::uint32_t oid, std::string_view s, std::vector<std::byte>& scratch) {
  switch (oid) {
    case kBool:
      if (s == "t") return true;
      if (s == "f") return false;
      break;
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid: {
      std::int64_t v = 0;
      if (parse_int(s, v)) return v;
      break;
    }
    case kFloat4:
    case kFloat8: {
      double v = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc{} && p == s.data() + s.size()) return v;
      break;
    }
    case kNumeric:
      if (s != "NaN" && s != "Infinity" && s != "-Infinity") return DecimalView{s};
      break;
    case kBytea: {
      if (!s.starts_with("\\x") || s.size() % 2 != 0) break;
      scratch.resize((s.size() - 2) / 2);
      for (std::size_t i = 0; i < scratch.size(); ++i) {
        const int hi = hex_value(s[2 + 2 * i]);
        const int lo = hex_value(s[3 + 2 * i]);
        if (hi < 0 || lo < 0) return s;
        scratch[i] = static_cast<std::byte>(hi * 16 + lo);
      }
      return std::span<const std::byte>(scratch);
    }
    case kDate: {
      Date d;
      if (parse_date(s, d)) return d;
      break;
    }
    case kTime: {
      TimeOfDay t;
      if (parse_time(s, t)) return t;
      break;
    }
    case kTimestamp:
    case kTimestamptz: {
      std::string_view body = s;
      if (oid == kTimestamptz) {
        if (!body.ends_with("+00")) break;
        body.remove_suffix(3);
      }
      Timestamp ts;
      if (body.size() >= 19 && body[10] == ' ' && parse_date(body.substr(0, 10), ts.date) &&
          parse_time(body.substr(11), ts.time)) {
        return ts;
      }
      break;
    }
    default:
      break;
  }
  return s;
}

bool binary_result(std::uint32_t oid) noexcept {
  switch (oid) {
    case kBool:
    case kInt2:
    case kInt4:
    case kInt8:
    case kFloat4:
    case kFloat8:
    case kDate:
    case kTime:
    case kTimestamp:
    case kTimestamptz:
    case kBytea:
      return true;
    default:
      return false;
  }
}

namespace {

template <class T>
T big_endian(std::string_view b) noexcept {
  std::uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<unsigned char>(c);
  return static_cast<T>(v);
}

// Days since 2000-01-01 (PostgreSQL's epoch) as a proleptic Gregorian date: the
// days-to-civil algorithm of Howard Hinnant's date library, shifted by 10,957 days.
Date date_from_pg_days(std::int64_t days) noexcept {
  const std::int64_t z = days + 10957 + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<std::uint64_t>(z - era * 146097);
  const std::uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const std::uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::uint64_t mp = (5 * doy + 2) / 153;
  const auto d = static_cast<std::uint8_t>(doy - (153 * mp + 2) / 5 + 1);
  const auto m = static_cast<std::uint8_t>(mp < 10 ? mp + 3 : mp - 9);
  return Date{static_cast<std::int32_t>(m <= 2 ? y + 1 : y), m, d};
}

TimeOfDay time_from_micros(std::int64_t us) noexcept {
  return TimeOfDay{static_cast<std::uint8_t>(us / 3'600'000'000),
                   static_cast<std::uint8_t>(us / 60'000'000 % 60),
                   static_cast<std::uint8_t>(us / 1'000'000 % 60),
                   static_cast<std::uint32_t>(us % 1'000'000 * 1000)};
}

// Text for what has no exact Value: infinities and years outside 1..9999, as the text
// format shows them, written into `scratch`.
std::string_view as_text(std::vector<std::byte>& scratch, std::string_view text) {
  scratch.resize(text.size());
  std::memcpy(scratch.data(), text.data(), text.size());
  return {reinterpret_cast<const char*>(scratch.data()), scratch.size()};
}

std::string_view date_text(std::vector<std::byte>& scratch, const Date& d,
                           const TimeOfDay* t = nullptr) {
  std::string s;
  append_date(s, d);
  if (t != nullptr) {
    const bool bc = d.year <= 0;
    if (bc) s.resize(s.size() - 3);
    s += ' ';
    append_time(s, *t);
    if (bc) s += " BC";
  }
  return as_text(scratch, s);
}

}  // namespace

Value decode_binary(std::uint32_t oid, std::string_view b, std::vector<std::byte>& scratch) {
  auto bad = [&] { return Value(as_text(scratch, "(malformed binary value)")); };
  switch (oid) {
    case kBool:
      if (b.size() != 1) return bad();
      return b[0] != 0;
    case kInt2:
      if (b.size() != 2) return bad();
      return std::int64_t{big_endian<std::int16_t>(b)};
    case kInt4:
      if (b.size() != 4) return bad();
      return std::int64_t{big_endian<std::int32_t>(b)};
    case kInt8:
      if (b.size() != 8) return bad();
      return big_endian<std::int64_t>(b);
    case kFloat4:
      if (b.size() != 4) return bad();
      return double{std::bit_cast<float>(big_endian<std::uint32_t>(b))};
    case kFloat8:
      if (b.size() != 8) return bad();
      return std::bit_cast<double>(big_endian<std::uint64_t>(b));
    case kBytea:
      return std::span<const std::byte>(reinterpret_cast<const std::byte*>(b.data()), b.size());
    case kDate: {
      if (b.size() != 4) return bad();
      const auto days = big_endian<std::int32_t>(b);
      if (days == std::numeric_limits<std::int32_t>::max()) return as_text(scratch, "infinity");
      if (days == std::numeric_limits<std::int32_t>::min()) return as_text(scratch, "-infinity");
      const Date d = date_from_pg_days(days);
      if (d.year < 1 || d.year > 9999) return date_text(scratch, d);
      return d;
    }
    case kTime: {
      if (b.size() != 8) return bad();
      const auto us = big_endian<std::int64_t>(b);
      if (us < 0 || us > 86'400'000'000) return bad();
      return time_from_micros(us);
    }
    case kTimestamp:
    case kTimestamptz: {
      if (b.size() != 8) return bad();
      const auto us = big_endian<std::int64_t>(b);
      if (us == std::numeric_limits<std::int64_t>::max()) return as_text(scratch, "infinity");
      if (us == std::numeric_limits<std::int64_t>::min()) return as_text(scratch, "-infinity");
      std::int64_t days = us / 86'400'000'000;
      std::int64_t rest = us % 86'400'000'000;
      if (rest < 0) {
        rest += 86'400'000'000;
        --days;
      }
      const Timestamp ts{date_from_pg_days(days), time_from_micros(rest)};
      if (ts.date.year < 1 || ts.date.year > 9999) return date_text(scratch, ts.date, &ts.time);
      return ts;
    }
    default:
      return std::string_view(b);
  }
}

std::int64_t rows_affected(std::string_view tag) noexcept {
  if (!(tag.starts_with("INSERT ") || tag.starts_with("UPDATE ") || tag.starts_with("DELETE ") ||
        tag.starts_with("MERGE "))) {
    return -1;
  }
  const auto space = tag.rfind(' ');
  std::int64_t n = -1;
  if (!parse_int(tag.substr(space + 1), n)) return -1;
  return n;
}

std::string md5_password(std::string_view user, std::string_view password,
                         std::span<const unsigned char, 4> salt) {
  auto md5_hex = [](std::string_view in) {
    unsigned char digest[16];
    unsigned len = 0;
    EVP_Digest(in.data(), in.size(), digest, &len, EVP_md5(), nullptr);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : digest) {
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
    return out;
  };
  std::string inner = md5_hex(std::string(password) + std::string(user));
  inner.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  return "md5" + md5_hex(inner);
}

ScramClient::ScramClient(std::string password, std::string nonce, std::string user)
    : password_(std::move(password)), nonce_(std::move(nonce)), user_(std::move(user)) {
  if (nonce_.empty()) {
    std::array<unsigned char, 18> raw{};
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
      throw std::runtime_error("SCRAM: no random bytes for the nonce");
    }
    nonce_ = base64(raw);
  }
}

std::string ScramClient::client_first() const {
  return "n,,n=" + user_ + ",r=" + nonce_;
}

std::string ScramClient::client_final(std::string_view server_first) {
  const std::string_view nonce = scram_attr(server_first, 'r');
  const std::string_view salt_b64 = scram_attr(server_first, 's');
  const std::string_view iter_text = scram_attr(server_first, 'i');
  int iterations = 0;
  if (!nonce.starts_with(nonce_) || nonce.size() == nonce_.size() || salt_b64.empty() ||
      !parse_int(iter_text, iterations) || iterations < 1 || iterations > 10'000'000) {
    throw std::runtime_error("SCRAM: malformed or forged server-first message");
  }
  const std::vector<unsigned char> salt = unbase64(salt_b64);
  salted_password_.resize(SHA256_DIGEST_LENGTH);
  PKCS5_PBKDF2_HMAC(password_.data(), static_cast<int>(password_.size()), salt.data(),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(),
                    static_cast<int>(salted_password_.size()), salted_password_.data());
  const Digest client_key = hmac(salted_password_, "Client Key");
  Digest stored_key{};
  SHA256(client_key.data(), client_key.size(), stored_key.data());
  const std::string without_proof = "c=biws,r=" + std::string(nonce);
  auth_message_ =
      "n=" + user_ + ",r=" + nonce_ + "," + std::string(server_first) + "," + without_proof;
  const Digest signature = hmac(stored_key, auth_message_);
  Digest proof{};
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = client_key[i] ^ signature[i];
  return without_proof + ",p=" + base64(proof);
}

bool ScramClient::server_final_ok(std::string_view server_final) const {
  const std::string_view v = scram_attr(server_final, 'v');
  if (v.empty() || salted_password_.empty()) return false;
  const Digest server_key = hmac(salted_password_, "Server Key");
  const Digest expected = hmac(server_key, auth_message_);
  return v == base64(expected);
}

}  // namespace sluice::pool::pg
