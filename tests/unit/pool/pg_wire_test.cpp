// The native PostgreSQL client's protocol pieces, checked without a server: URLs, the SCRAM
// and MD5 exchanges against published vectors, placeholders, message encoding and decoding.
#include "pool/pg_wire.hpp"

#include <gtest/gtest.h>

#include <array>
#include <limits>

namespace sluice::pool::pg {
namespace {

TEST(PgUrl, ReadsEveryPartAndDecodesPercentEscapes) {
  const ConnectParams p = parse_url(
      "postgresql://ana%40corp:p%3Ass%2Fw@db.internal:6543/sales%20eu"
      "?sslmode=disable&application_name=bi");
  EXPECT_EQ(p.user, "ana@corp");
  EXPECT_EQ(p.password, "p:ss/w");
  EXPECT_EQ(p.host, "db.internal");
  EXPECT_EQ(p.port, 6543);
  EXPECT_EQ(p.database, "sales eu");
  EXPECT_EQ(p.application_name, "bi");
}

TEST(PgUrl, DefaultsAndIpv6) {
  const ConnectParams p = parse_url("postgres://bob@[::1]/");
  EXPECT_EQ(p.host, "::1");
  EXPECT_EQ(p.port, 5432);
  EXPECT_EQ(p.database, "bob");  // as libpq: the database defaults to the user name
  EXPECT_EQ(p.password, "");
  EXPECT_TRUE(is_url("postgresql://x@h/d"));
  EXPECT_FALSE(is_url("Driver={PostgreSQL Unicode};Server=h;"));
}

TEST(PgUrl, RejectsWhatItCannotHonourWithAReason) {
  auto message = [](const char* url) {
    try {
      parse_url(url);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("postgresql://u:secret@h/d?sslmode=require").find("ODBC"), std::string::npos);
  EXPECT_NE(message("postgresql://u@h/d?sslcert=x").find("unknown parameter 'sslcert'"),
            std::string::npos);
  EXPECT_NE(message("postgresql://u@h:0/d").find("port"), std::string::npos);
  EXPECT_NE(message("postgresql://u@h:99999/d").find("port"), std::string::npos);
  EXPECT_NE(message("postgresql://h/d").find("no user"), std::string::npos);
  EXPECT_NE(message("postgresql://u%zz@h/d").find("percent"), std::string::npos);
  // The password never appears in a message.
  EXPECT_EQ(message("postgresql://u:hunter2@h/d?sslmode=verify-full").find("hunter2"),
            std::string::npos);
}

TEST(PgScram, MatchesTheRfc7677Exchange) {
  ScramClient c("pencil", "rOprNGfwEbeRWgbNEkqO", "user");
  EXPECT_EQ(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  const std::string final_msg = c.client_final(
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  EXPECT_EQ(final_msg,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_TRUE(c.server_final_ok("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
  EXPECT_FALSE(c.server_final_ok("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
}

TEST(PgScram, RefusesAServerThatDoesNotExtendOurNonce) {
  ScramClient c("pencil", "abc");
  EXPECT_THROW(c.client_final("r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"), std::runtime_error);
  EXPECT_THROW(c.client_final("r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"), std::runtime_error);
  EXPECT_THROW(c.client_final("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0"), std::runtime_error);
  ScramClient random("pw");
  EXPECT_GE(random.client_first().size(), std::string("n,,n=,r=").size() + 20);
  EXPECT_NE(random.client_first(), ScramClient("pw").client_first());
}

TEST(PgMd5, MatchesTheServersFormula) {
  // md5(md5("secret" + "alice") + salt), computed independently.
  const std::array<unsigned char, 4> salt{1, 2, 3, 4};
  EXPECT_EQ(md5_password("alice", "secret", salt), "md598a0412b9c31436fc53776e863350083");
}

TEST(PgPlaceholders, NumbersOnlyThoseOutsideLiteralsAndComments) {
  const std::string sql =
      "SELECT ?, 'it''s ?', \"a?b\", $$ ? $$, $x$ ? $x$, E'\\' ?', ? -- ?\n/* ? */ FROM t "
      "WHERE j ?| array['k'] AND n = ?";
  // The jsonb operator ?| is a placeholder to an ODBC driver too; callers that bind
  // parameters do not use it. Here it counts, as in psqlODBC.
  EXPECT_EQ(number_placeholders(sql, 4, "s"),
            "SELECT $1, 'it''s ?', \"a?b\", $$ ? $$, $x$ ? $x$, E'\\' ?', $2 -- ?\n/* ? */ FROM "
            "t WHERE j $3| array['k'] AND n = $4");
  try {
    number_placeholders("SELECT ?", 2, "warehouse");
    ADD_FAILURE() << "count mismatch accepted";
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), errc::invalid_argument);
    EXPECT_EQ(e.source(), "warehouse");
    EXPECT_NE(std::string(e.what()).find("1 placeholders but 2 parameters"), std::string::npos);
  }
}

// Value holds a span, which has no ==: compare the alternative and its content.
template <class T>
::testing::AssertionResult holds(const Value& v, const T& want) {
  if (!std::holds_alternative<T>(v)) {
    return ::testing::AssertionFailure() << "holds alternative " << v.index();
  }
  if (!(std::get<T>(v) == want)) return ::testing::AssertionFailure() << "different value";
  return ::testing::AssertionSuccess();
}

TEST(PgDecode, TextCellsBecomeTypedValues) {
  std::vector<std::byte> scratch;
  EXPECT_TRUE(holds(decode_text(23, "-42", scratch), std::int64_t{-42}));
  EXPECT_TRUE(
      holds(decode_text(20, "9223372036854775807", scratch), std::int64_t{9223372036854775807}));
  EXPECT_TRUE(holds(decode_text(16, "t", scratch), true));
  EXPECT_TRUE(holds(decode_text(701, "0.1", scratch), 0.1));
  EXPECT_TRUE(
      holds(decode_text(700, "-Infinity", scratch), -std::numeric_limits<double>::infinity()));
  EXPECT_TRUE(holds(decode_text(1700, "-12.50", scratch), DecimalView{"-12.50"}));
  EXPECT_TRUE(holds(decode_text(1700, "NaN", scratch), std::string_view("NaN")));
  EXPECT_TRUE(holds(decode_text(1082, "2024-02-29", scratch), Date{2024, 2, 29}));
  EXPECT_TRUE(holds(decode_text(1082, "infinity", scratch), std::string_view("infinity")));
  EXPECT_TRUE(
      holds(decode_text(1082, "0044-03-15 BC", scratch), std::string_view("0044-03-15 BC")));
  EXPECT_TRUE(
      holds(decode_text(1083, "23:59:58.123456", scratch), TimeOfDay{23, 59, 58, 123456000}));
  EXPECT_TRUE(holds(decode_text(1114, "1999-12-31 23:59:59.5", scratch),
                    Timestamp{{1999, 12, 31}, {23, 59, 59, 500000000}}));
  EXPECT_TRUE(holds(decode_text(1184, "2038-01-19 03:14:08+00", scratch),
                    Timestamp{{2038, 1, 19}, {3, 14, 8, 0}}));
  EXPECT_TRUE(holds(decode_text(1184, "2038-01-19 08:44:08+05:30", scratch),
                    std::string_view("2038-01-19 08:44:08+05:30")));
  const Value bin = decode_text(17, "\\x00ff7f", scratch);
  ASSERT_TRUE(std::holds_alternative<std::span<const std::byte>>(bin));
  const auto b = std::get<std::span<const std::byte>>(bin);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0], std::byte{0});
  EXPECT_EQ(b[1], std::byte{0xff});
  EXPECT_EQ(b[2], std::byte{0x7f});
  EXPECT_TRUE(holds(decode_text(25, "plain", scratch), std::string_view("plain")));
  EXPECT_TRUE(holds(decode_text(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", scratch),
                    std::string_view("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")));
}

std::string hex(std::string_view h) {
  std::string out;
  for (std::size_t i = 0; i < h.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
  }
  return out;
}

TEST(PgDecode, BinaryCellsBecomeTheSameValuesAsText) {
  std::vector<std::byte> scratch;
  EXPECT_TRUE(holds(decode_binary(16, hex("01"), scratch), true));
  EXPECT_TRUE(holds(decode_binary(21, hex("ff85"), scratch), std::int64_t{-123}));
  EXPECT_TRUE(holds(decode_binary(23, hex("fffffffe"), scratch), std::int64_t{-2}));
  EXPECT_TRUE(holds(decode_binary(20, hex("7fffffffffffffff"), scratch),
                    std::numeric_limits<std::int64_t>::max()));
  EXPECT_TRUE(holds(decode_binary(701, hex("3fb999999999999a"), scratch), 0.1));
  EXPECT_TRUE(holds(decode_binary(700, hex("3fc00000"), scratch), 1.5));
  // Dates count days from 2000-01-01; timestamps microseconds from its midnight.
  EXPECT_TRUE(holds(decode_binary(1082, hex("00002279"), scratch), Date{2024, 2, 29}));
  EXPECT_TRUE(holds(decode_binary(1082, hex("fff4dbf9"), scratch), Date{1, 1, 1}));
  EXPECT_TRUE(holds(decode_binary(1082, hex("7fffffff"), scratch), std::string_view("infinity")));
  EXPECT_TRUE(
      holds(decode_binary(1082, hex("002c95d4"), scratch), std::string_view("10000-01-01")));
  EXPECT_TRUE(holds(decode_binary(1083, hex("000000141dbabdc0"), scratch),
                    TimeOfDay{23, 59, 58, 123456000}));
  EXPECT_TRUE(holds(decode_binary(1114, hex("ffffffffffffffff"), scratch),
                    Timestamp{{1999, 12, 31}, {23, 59, 59, 999999000}}));
  EXPECT_TRUE(holds(decode_binary(1184, hex("0000000000000000"), scratch),
                    Timestamp{{2000, 1, 1}, {0, 0, 0, 0}}));
  EXPECT_TRUE(
      holds(decode_binary(1114, hex("8000000000000000"), scratch), std::string_view("-infinity")));
  const Value bin = decode_binary(17, hex("00ff"), scratch);
  ASSERT_TRUE(std::holds_alternative<std::span<const std::byte>>(bin));
  EXPECT_EQ(std::get<std::span<const std::byte>>(bin).size(), 2u);
  // A value of the wrong width is reported, not misread.
  EXPECT_TRUE(
      holds(decode_binary(23, hex("0001"), scratch), std::string_view("(malformed binary value)")));
  EXPECT_TRUE(binary_result(1114));
  EXPECT_FALSE(binary_result(1700));  // numeric stays text: exact digits
}

TEST(PgDescribe, TypeModifiersGiveSizeAndScale) {
  const ColumnInfo num = describe_type("price", 1700, ((10 << 16) | 2) + 4, -1);
  EXPECT_EQ(num.type, ColumnType::decimal);
  EXPECT_EQ(num.size, 10u);
  EXPECT_EQ(num.scale, 2);
  const ColumnInfo vc = describe_type("label", 1043, 24, -1);
  EXPECT_EQ(vc.type, ColumnType::text);
  EXPECT_EQ(vc.database_type, "varchar");
  EXPECT_EQ(vc.size, 20u);
  EXPECT_EQ(describe_type("x", 600, -1, 16).database_type, "oid 600");  // point
  EXPECT_EQ(describe_type("x", 600, -1, 16).type, ColumnType::unknown);
}

TEST(PgMessages, ErrorsCarrySqlstateDetailAndHint) {
  std::string body;
  for (auto [code, value] : {std::pair{'S', "ERROR"},
                             {'C', "23505"},
                             {'M', "duplicate key value violates unique constraint \"pk\""},
                             {'D', "Key (id)=(1) already exists."},
                             {'H', "use another id"}}) {
    body += code;
    body += value;
    body += '\0';
  }
  body += '\0';
  const Diagnostic d = parse_error(body);
  EXPECT_EQ(d.sqlstate, "23505");
  EXPECT_EQ(d.message,
            "duplicate key value violates unique constraint \"pk\" (Key (id)=(1) already "
            "exists.); hint: use another id");
  EXPECT_THROW(parse_error(std::string("Cabc")), ProtocolError);  // unterminated
}

TEST(PgMessages, CommandTagsGiveRowsAffectedForWritesOnly) {
  EXPECT_EQ(rows_affected("INSERT 0 5"), 5);
  EXPECT_EQ(rows_affected("UPDATE 3"), 3);
  EXPECT_EQ(rows_affected("DELETE 0"), 0);
  EXPECT_EQ(rows_affected("MERGE 7"), 7);
  EXPECT_EQ(rows_affected("SELECT 2"), -1);
  EXPECT_EQ(rows_affected("CREATE TABLE"), -1);
}

// The Execute message of a run asks for all rows (0) or, with a row limit, at most that many.
TEST(PgMessages, ExecuteCarriesTheRowLimit) {
  auto execute_limit = [](const std::string& out) {
    for (std::size_t pos = 0; pos < out.size();) {
      MessageReader header(std::string_view(out).substr(pos + 1, 4));
      const auto len = static_cast<std::size_t>(header.i32());
      if (out[pos] == 'E') {
        MessageReader execute(std::string_view(out).substr(pos + 5, len - 4));
        EXPECT_EQ(execute.cstr(), "");  // the unnamed portal
        return execute.i32();
      }
      pos += 1 + len;
    }
    ADD_FAILURE() << "no Execute message";
    return -1;
  };
  std::string out;
  write_bind_execute(out, "s1", {}, {});
  EXPECT_EQ(execute_limit(out), 0);
  out.clear();
  write_bind_execute(out, "s1", {}, {}, 1001);
  EXPECT_EQ(execute_limit(out), 1001);
  out.clear();
  write_query(out, "SELECT 1", {}, 11);
  EXPECT_EQ(execute_limit(out), 11);
  out.clear();
  write_query(out, "SELECT 1", {}, std::uint64_t{1} << 40);  // past the field: the most it holds
  EXPECT_EQ(execute_limit(out), std::numeric_limits<std::int32_t>::max());
}

TEST(PgMessages, AQueryIsParseBindDescribeExecuteSyncWithTextParameters) {
  std::string out;
  const std::vector<Param> params = {Null{},
                                     std::int64_t{-7},
                                     Date{0, 3, 15},
                                     Timestamp{{2024, 1, 2}, {3, 4, 5, 120000000}},
                                     std::numeric_limits<double>::infinity(),
                                     std::vector<std::byte>{std::byte{0}, std::byte{1}}};
  write_query(out, "SELECT $1", params);  // the unprepared path: results all in text
  std::vector<std::pair<char, std::string>> messages;
  for (std::size_t pos = 0; pos < out.size();) {
    MessageReader header(std::string_view(out).substr(pos + 1, 4));
    const auto len = static_cast<std::size_t>(header.i32());
    messages.emplace_back(out[pos], out.substr(pos + 5, len - 4));
    pos += 1 + len;
  }
  ASSERT_EQ(messages.size(), 5u);
  EXPECT_EQ(messages[0].first, 'P');
  EXPECT_EQ(messages[1].first, 'B');
  EXPECT_EQ(messages[2].first, 'D');
  EXPECT_EQ(messages[3].first, 'E');
  EXPECT_EQ(messages[4].first, 'S');
  MessageReader parse(messages[0].second);
  EXPECT_EQ(parse.cstr(), "");
  EXPECT_EQ(parse.cstr(), "SELECT $1");
  ASSERT_EQ(parse.i16(), 6);
  const std::int32_t oids[] = {0, 20, 1082, 1114, 701, 17};
  for (std::int32_t oid : oids) EXPECT_EQ(parse.i32(), oid);
  MessageReader bind(messages[1].second);
  bind.cstr();
  bind.cstr();
  ASSERT_EQ(bind.i16(), 6);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(bind.i16(), i == 5 ? 1 : 0);  // bytea binary
  ASSERT_EQ(bind.i16(), 6);
  EXPECT_EQ(bind.i32(), -1);  // NULL
  auto value = [&bind] { return std::string(bind.bytes(static_cast<std::size_t>(bind.i32()))); };
  EXPECT_EQ(value(), "-7");
  EXPECT_EQ(value(), "0001-03-15 BC");
  EXPECT_EQ(value(), "2024-01-02 03:04:05.12");
  EXPECT_EQ(value(), "Infinity");
  EXPECT_EQ(value(), std::string("\0\1", 2));
  EXPECT_EQ(bind.i16(), 0);  // results all in text
  EXPECT_EQ(bind.remaining(), 0u);
}

}  // namespace
}  // namespace sluice::pool::pg
