// Every value type through the real drivers: psqlODBC against a private PostgreSQL 15 and
// sqliteodbc against a SQLite file, written with bound parameters and read back.
#include <gtest/gtest.h>

#include <limits>

#include "pool/pg_connection.hpp"
#include "tests/integration/pool/odbc_harness.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/sqlite_file.hpp"

namespace sluice::test {
namespace {

using pool::Date;
using pool::Decimal;
using pool::Null;
using pool::Param;
using pool::TimeOfDay;
using pool::Timestamp;

std::vector<std::byte> bytes(std::initializer_list<unsigned> v) {
  std::vector<std::byte> out;
  for (unsigned b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

std::string megabyte_text() {
  std::string s;
  s.reserve(1 << 20);
  const std::string unit = "Zoë 日本 ✓ ";  // multi-byte UTF-8 throughout
  while (s.size() + unit.size() <= (1u << 20)) s += unit;
  return s;
}

// Runs twice: through psqlODBC and through the native PostgreSQL client, which must agree.
class PostgresTypesTest : public OdbcHarness, public ::testing::WithParamInterface<const char*> {
 protected:
  std::shared_ptr<pool::Backend> pg() { return pg_backend(GetParam()); }

  void SetUp() override {
    PgCluster::shared().psql(
        "DROP TABLE IF EXISTS types_rt;"
        "CREATE TABLE types_rt (id int PRIMARY KEY, b boolean, i2 smallint, i4 integer,"
        " i8 bigint, d numeric(38,10), dn numeric, f float8, r real, t text, vc varchar(20),"
        " bin bytea, dt date, tm time, ts timestamp)");
  }
};

TEST_P(PostgresTypesTest, EveryTypeRoundTripsThroughBoundParameters) {
  const std::string big = megabyte_text();
  const std::vector<std::vector<Param>> rows = {
      {std::int64_t{1}, true, std::int64_t{-32768}, std::int64_t{2147483647},
       std::numeric_limits<std::int64_t>::min(), Decimal{"1234567890123456789012345678.0123456789"},
       Decimal{"12345678901234567890123456789012345678"}, 3.141592653589793, 1.5,
       std::string("héllo wörld ✓ 日本"), std::string("Søren"), bytes({0, 1, 0xff, 0, 0x7f}),
       Date{2024, 2, 29}, TimeOfDay{23, 59, 58, 123456000},
       Timestamp{{1999, 12, 31}, {23, 59, 59, 999999000}}},
      {std::int64_t{2}, Null{}, Null{}, Null{}, Null{}, Null{}, Null{}, Null{}, Null{}, Null{},
       Null{}, Null{}, Null{}, Null{}, Null{}},
      {std::int64_t{3}, false, std::int64_t{0}, std::int64_t{-1},
       std::numeric_limits<std::int64_t>::max(), Decimal{"-0.0000000001"}, Decimal{"0"}, -0.0,
       -2.25, big, std::string(""), std::vector<std::byte>{}, Date{1, 1, 1}, TimeOfDay{0, 0, 0, 0},
       Timestamp{{2038, 1, 19}, {3, 14, 8, 0}}},
  };
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await pg()->connect(pool::Clock::now() + 10s);
    for (const auto& row : rows) {
      co_await query(
          *conn, "INSERT INTO types_rt VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row);
    }
    auto result = co_await query(*conn, "SELECT * FROM types_rt ORDER BY id");
    const auto& cols = result.columns();
    EXPECT_EQ(cols.size(), 15u);
    if (cols.size() != 15u) co_return;
    EXPECT_EQ(cols[1].type, pool::ColumnType::boolean);
    EXPECT_EQ(cols[4].type, pool::ColumnType::integer);
    EXPECT_EQ(cols[5].type, pool::ColumnType::decimal);
    EXPECT_EQ(cols[7].type, pool::ColumnType::floating);
    EXPECT_EQ(cols[9].type, pool::ColumnType::text);
    EXPECT_EQ(cols[11].type, pool::ColumnType::binary);
    EXPECT_EQ(cols[12].type, pool::ColumnType::date);
    EXPECT_EQ(cols[13].type, pool::ColumnType::time);
    EXPECT_EQ(cols[14].type, pool::ColumnType::timestamp);
    EXPECT_EQ(cols[9].database_type, "text");
    EXPECT_EQ(result.rows().size(), rows.size());
    if (result.rows().size() != rows.size()) co_return;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      for (std::size_t c = 0; c < cols.size(); ++c) {
        const Param& got = result.rows()[r][c];
        const Param& want = rows[r][c];
        if (std::holds_alternative<std::string>(want) &&
            std::get<std::string>(want).size() > 1000) {
          EXPECT_TRUE(std::holds_alternative<std::string>(got));
          EXPECT_EQ(std::get<std::string>(got).size(), std::get<std::string>(want).size());
          EXPECT_TRUE(std::get<std::string>(got) == std::get<std::string>(want))
              << "1 MB text differs";
          continue;
        }
        EXPECT_EQ(got, want) << "row " << r << " column " << cols[c].name;
      }
    }
  });
}

TEST_P(PostgresTypesTest, ManyRowsArriveInBlocksExactly) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await pg()->connect(pool::Clock::now() + 10s);
    auto result = co_await query(
        *conn,
        "SELECT g, 'row ' || g, (g * 1.25)::numeric(12,2), CASE WHEN g % 7 = 0 THEN NULL "
        "ELSE g::float8 / 4 END FROM generate_series(1, 1000) g ORDER BY g");
    EXPECT_EQ(result.rows().size(), 1000u);
    if (result.rows().size() != 1000u) co_return;
    for (std::int64_t g = 1; g <= 1000; ++g) {
      const auto& row = result.rows()[static_cast<std::size_t>(g - 1)];
      EXPECT_EQ(row[0], Param(g));
      EXPECT_EQ(row[1], Param("row " + std::to_string(g)));
      char dec[32];
      std::snprintf(dec, sizeof dec, "%.2f", static_cast<double>(g) * 1.25);
      EXPECT_EQ(row[2], Param(Decimal{dec}));
      if (g % 7 == 0) {
        EXPECT_EQ(row[3], Param(Null{}));
      } else {
        EXPECT_EQ(row[3], Param(static_cast<double>(g) / 4));
      }
    }
  });
}

TEST_P(PostgresTypesTest, ValuesLongerThanTheirSlotArriveWhole) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await pg()->connect(pool::Clock::now() + 10s);
    // Short and long values interleaved across several blocks; json reports size 255.
    auto result = co_await query(
        *conn,
        "SELECT g, repeat('é', (g % 5) * g * 3), json_build_object('k', repeat('v', g * 2)), "
        "decode(repeat('ab', g * 10), 'hex') FROM generate_series(1, 600) g ORDER BY g");
    EXPECT_EQ(result.rows().size(), 600u);
    if (result.rows().size() != 600u) co_return;
    for (std::size_t g = 1; g <= 600; ++g) {
      const auto& row = result.rows()[g - 1];
      std::string want;
      for (std::size_t i = 0; i < (g % 5) * g * 3; ++i) want += "é";
      EXPECT_EQ(row[1], Param(want)) << "row " << g;
      EXPECT_EQ(row[2], Param("{\"k\" : \"" + std::string(g * 2, 'v') + "\"}")) << "row " << g;
      EXPECT_EQ(std::get<std::vector<std::byte>>(row[3]).size(), g * 10) << "row " << g;
    }
  });
}

TEST_P(PostgresTypesTest, SinkCanStopEarlyAndTheConnectionStaysUsable) {
  class FirstTen final : public pool::RowSink {
   public:
    void columns(std::span<const pool::ColumnInfo>) override {}
    bool row(const pool::RowView&) override { return ++seen < 10; }
    int seen = 0;
  };
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await pg()->connect(pool::Clock::now() + 10s);
    FirstTen sink;
    const pool::Statement stmt{"SELECT g FROM generate_series(1, 100000) g", {}};
    auto r = co_await conn->execute(stmt, sink, pool::Clock::now() + 10s);
    EXPECT_TRUE(r.stopped_by_sink);
    EXPECT_EQ(r.rows_fetched, 10u);
    auto again = co_await query(*conn, "SELECT 42");
    EXPECT_EQ(again.rows().at(0).at(0), Param(std::int64_t{42}));
    EXPECT_TRUE(conn->reusable());
  });
}

TEST_P(PostgresTypesTest, StatementErrorsCarrySqlstateAndLeaveTheConnectionUsable) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await pg()->connect(pool::Clock::now() + 10s);
    try {
      co_await query(*conn, "SELEC 1");
      ADD_FAILURE() << "syntax error expected";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::statement_failed);
      EXPECT_EQ(e.diagnostic().sqlstate, "42601");
      EXPECT_NE(e.diagnostic().message.find("syntax error"), std::string::npos);
      EXPECT_EQ(e.source(), "pg");
    }
    EXPECT_TRUE(conn->reusable());
    std::vector<Param> above{std::int64_t{100}};
    auto r = co_await query(*conn, "UPDATE types_rt SET b = true WHERE id > ?", above);
    EXPECT_TRUE(r.rows().empty());
    pool::DiscardRows none;
    const pool::Statement ins{"INSERT INTO types_rt(id) SELECT g FROM generate_series(1,5) g", {}};
    auto res = co_await conn->execute(ins, none, pool::Clock::now() + 10s);
    EXPECT_EQ(res.rows_affected, 5);
  });
}

INSTANTIATE_TEST_SUITE_P(Drivers, PostgresTypesTest, ::testing::Values("odbc", "native"),
                         driver_name);

class SqliteTypesTest : public OdbcHarness {
 protected:
  SqliteFile file_;
};

TEST_F(SqliteTypesTest, EveryTypeRoundTripsThroughBoundParameters) {
  const std::string big = megabyte_text();
  // SQLite stores DECIMAL columns as floating point, so exact decimals are a PostgreSQL
  // test; here decimals are values a double represents exactly.
  const std::vector<std::vector<Param>> rows = {
      {std::int64_t{1}, true, std::numeric_limits<std::int64_t>::min(), 2.5,
       std::string("héllo wörld ✓ 日本"), bytes({0, 1, 0xff, 0, 0x7f}), Date{2024, 2, 29},
       TimeOfDay{23, 59, 58, 0}, Timestamp{{1999, 12, 31}, {23, 59, 59, 123000000}}},
      {std::int64_t{2}, Null{}, Null{}, Null{}, Null{}, Null{}, Null{}, Null{}, Null{}},
      {std::int64_t{3}, false, std::numeric_limits<std::int64_t>::max(), -1e300, big,
       std::vector<std::byte>{}, Date{1970, 1, 1}, TimeOfDay{0, 0, 1, 0},
       Timestamp{{2038, 1, 19}, {3, 14, 8, 0}}},
  };
  run([&]() -> asio::awaitable<void> {
    auto conn =
        co_await backend("lite", file_.odbc_connection_string())->connect(pool::Clock::now() + 10s);
    co_await query(*conn,
                   "CREATE TABLE types_rt (id INTEGER PRIMARY KEY, b BOOLEAN, i INTEGER, f REAL,"
                   " t TEXT, bin BLOB, dt DATE, tm TIME, ts TIMESTAMP)");
    for (const auto& row : rows) {
      co_await query(*conn, "INSERT INTO types_rt VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row);
    }
    auto result = co_await query(*conn, "SELECT * FROM types_rt ORDER BY id");
    const auto& cols = result.columns();
    EXPECT_EQ(cols.size(), 9u);
    if (cols.size() != 9u) co_return;
    EXPECT_EQ(cols[1].type, pool::ColumnType::boolean);
    EXPECT_EQ(cols[2].type, pool::ColumnType::integer);
    EXPECT_EQ(cols[3].type, pool::ColumnType::floating);
    EXPECT_EQ(cols[4].type, pool::ColumnType::text);
    EXPECT_EQ(cols[5].type, pool::ColumnType::binary);
    EXPECT_EQ(cols[6].type, pool::ColumnType::date);
    EXPECT_EQ(cols[7].type, pool::ColumnType::time);
    EXPECT_EQ(cols[8].type, pool::ColumnType::timestamp);
    EXPECT_EQ(result.rows().size(), rows.size());
    if (result.rows().size() != rows.size()) co_return;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      for (std::size_t c = 0; c < cols.size(); ++c) {
        const Param& got = result.rows()[r][c];
        const Param& want = rows[r][c];
        if (std::holds_alternative<std::string>(want) &&
            std::get<std::string>(want).size() > 1000) {
          EXPECT_TRUE(got == want) << "1 MB text differs";
          continue;
        }
        EXPECT_EQ(got, want) << "row " << r << " column " << cols[c].name;
      }
    }
  });
}

TEST_F(SqliteTypesTest, LongAndShortTextAcrossManyRows) {
  run([&]() -> asio::awaitable<void> {
    auto conn =
        co_await backend("lite", file_.odbc_connection_string())->connect(pool::Clock::now() + 10s);
    auto result = co_await query(
        *conn,
        "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 700) "
        "SELECT g, replace(hex(zeroblob((g % 5) * g * 3)), '00', 'x'), count(*) OVER () FROM s "
        "ORDER BY g");
    EXPECT_EQ(result.rows().size(), 700u);
    if (result.rows().size() != 700u) co_return;
    for (std::size_t g = 1; g <= 700; ++g) {
      const auto& row = result.rows()[g - 1];
      EXPECT_EQ(row[0], Param(static_cast<std::int64_t>(g)));
      EXPECT_EQ(row[1], Param(std::string((g % 5) * g * 3, 'x'))) << "row " << g;
      EXPECT_EQ(row[2], Param(std::int64_t{700}));
    }
  });
}

}  // namespace
}  // namespace sluice::test
