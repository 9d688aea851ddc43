#include "gateway/result_encoder.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tests/unit/gateway/fake_source.hpp"

namespace sluice::gateway {
namespace {

using json = nlohmann::json;
using fakes::bytes;
using fakes::column;
using fakes::FakeRow;
using pool::ColumnType;
using pool::Param;

// Runs one result through a ResultEncoder, as a backend would.
struct Encoded {
  std::string structured;
  std::string text;
  std::uint64_t row_count = 0;
  bool truncated = false;
  std::size_t rows_accepted = 0;  // rows for which row() returned true
  bool stopped = false;           // row() returned false

  json parsed() const { return json::parse(structured); }
};

Encoded encode(const std::vector<pool::ColumnInfo>& columns,
               const std::vector<std::vector<Param>>& rows, ResultLimits limits = {},
               std::optional<std::int64_t> rows_affected = std::nullopt) {
  Encoded e;
  ResultEncoder enc(e.structured, e.text, limits);
  enc.columns(columns);
  for (const auto& r : rows) {
    if (!enc.row(FakeRow(r))) {
      e.stopped = true;
      break;
    }
    ++e.rows_accepted;
  }
  enc.finish(rows_affected);
  e.row_count = enc.row_count();
  e.truncated = enc.truncated();
  return e;
}

// The JSON of one cell of the given type.
json cell(ColumnType type, Param value) {
  const Encoded e = encode({column("v", type)}, {{std::move(value)}});
  const json j = e.parsed();
  EXPECT_EQ(j["rows"].size(), 1u) << e.structured;
  return j["rows"][0][0];
}

// The text rendering of one cell (the line after the header).
std::string text_cell(ColumnType type, Param value) {
  const Encoded e = encode({column("v", type)}, {{std::move(value)}});
  const auto first = e.text.find('\n');
  const auto second = e.text.find('\n', first + 1);
  return e.text.substr(first + 1, second - first - 1);
}

TEST(ResultEncoderTest, StructuredShapeHasColumnsRowsCountAndTruncated) {
  const Encoded e =
      encode({column("id", ColumnType::integer, "int4"),
              column("name", ColumnType::text, "varchar"), column("x", ColumnType::unknown)},
             {{std::int64_t{1}, std::string("ann"), pool::Null{}},
              {std::int64_t{2}, std::string("bob"), std::string("?")}});
  const json j = e.parsed();
  EXPECT_EQ(j["columns"], json::parse(R"([
      {"name":"id","type":"integer","databaseType":"int4"},
      {"name":"name","type":"text","databaseType":"varchar"},
      {"name":"x","type":"unknown"}])"))
      << "databaseType is left out when unknown";
  EXPECT_EQ(j["rows"], json::parse(R"([[1,"ann",null],[2,"bob","?"]])"));
  EXPECT_EQ(j["rowCount"], 2);
  EXPECT_EQ(j["truncated"], false);
  EXPECT_FALSE(j.contains("rowsAffected"));
  EXPECT_EQ(e.row_count, 2u);
  EXPECT_FALSE(e.truncated);
}

TEST(ResultEncoderTest, ColumnTypesAreNamedPortably) {
  const std::vector<pool::ColumnInfo> cols = {
      column("a", ColumnType::boolean),   column("b", ColumnType::integer),
      column("c", ColumnType::floating),  column("d", ColumnType::decimal),
      column("e", ColumnType::text),      column("f", ColumnType::binary),
      column("g", ColumnType::date),      column("h", ColumnType::time),
      column("i", ColumnType::timestamp), column("j", ColumnType::unknown)};
  const json j = encode(cols, {}).parsed();
  std::vector<std::string> types;
  for (const auto& c : j["columns"]) types.push_back(c["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"boolean", "integer", "float", "decimal", "text",
                                             "binary", "date", "time", "timestamp", "unknown"}));
}

TEST(ResultEncoderTest, NullAndBooleans) {
  EXPECT_TRUE(cell(ColumnType::text, pool::Null{}).is_null());
  EXPECT_EQ(cell(ColumnType::boolean, true), json(true));
  EXPECT_EQ(cell(ColumnType::boolean, false), json(false));
}

TEST(ResultEncoderTest, IntegersAreNumbersWithinTheJavaScriptSafeRange) {
  constexpr std::int64_t kSafe = (std::int64_t{1} << 53) - 1;
  EXPECT_EQ(cell(ColumnType::integer, std::int64_t{0}), json(0));
  EXPECT_EQ(cell(ColumnType::integer, std::int64_t{-42}), json(-42));
  const json max_safe = cell(ColumnType::integer, kSafe);
  ASSERT_TRUE(max_safe.is_number_integer());
  EXPECT_EQ(max_safe.get<std::int64_t>(), kSafe);
  const json min_safe = cell(ColumnType::integer, -kSafe);
  ASSERT_TRUE(min_safe.is_number_integer());
  EXPECT_EQ(min_safe.get<std::int64_t>(), -kSafe);
}

TEST(ResultEncoderTest, IntegersBeyondTwoToThe53AreExactStrings) {
  constexpr std::int64_t kSafe = (std::int64_t{1} << 53) - 1;
  EXPECT_EQ(cell(ColumnType::integer, kSafe + 1), json("9007199254740992"));
  EXPECT_EQ(cell(ColumnType::integer, -kSafe - 1), json("-9007199254740992"));
  EXPECT_EQ(cell(ColumnType::integer, std::numeric_limits<std::int64_t>::max()),
            json("9223372036854775807"));
  EXPECT_EQ(cell(ColumnType::integer, std::numeric_limits<std::int64_t>::min()),
            json("-9223372036854775808"));
}

TEST(ResultEncoderTest, DoublesRoundTripAndNonFiniteBecomeStrings) {
  for (double v : {0.1, -2.5, 1.0 / 3, 1e300, 5e-324, 123456789.125}) {
    const json j = cell(ColumnType::floating, v);
    ASSERT_TRUE(j.is_number_float() || j.is_number_integer()) << j;
    EXPECT_EQ(j.get<double>(), v);
  }
  const Encoded e = encode({column("v", ColumnType::floating)}, {{0.1}});
  EXPECT_NE(e.structured.find("[[0.1]]"), std::string::npos) << "shortest form: " << e.structured;
  EXPECT_EQ(cell(ColumnType::floating, std::numeric_limits<double>::quiet_NaN()), json("NaN"));
  EXPECT_EQ(cell(ColumnType::floating, std::numeric_limits<double>::infinity()), json("Infinity"));
  EXPECT_EQ(cell(ColumnType::floating, -std::numeric_limits<double>::infinity()),
            json("-Infinity"));
}

TEST(ResultEncoderTest, DecimalsAreExactStrings) {
  EXPECT_EQ(cell(ColumnType::decimal, pool::Decimal{"-12.50"}), json("-12.50"));
  EXPECT_EQ(cell(ColumnType::decimal, pool::Decimal{"12345678901234567890.000000001"}),
            json("12345678901234567890.000000001"));
  EXPECT_EQ(cell(ColumnType::decimal, pool::Decimal{"0"}), json("0"));
}

TEST(ResultEncoderTest, TextIsEscapedAndSanitised) {
  EXPECT_EQ(cell(ColumnType::text, std::string("say \"hi\" \\o/")), json("say \"hi\" \\o/"));
  EXPECT_EQ(cell(ColumnType::text, std::string("a\tb\nc\rd\x01\x1f")), json("a\tb\nc\rd\x01\x1f"));
  EXPECT_EQ(cell(ColumnType::text, std::string(std::string_view("nul\0in", 6))),
            json(std::string(std::string_view("nul\0in", 6))));
  EXPECT_EQ(cell(ColumnType::text, std::string("Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x98\x80")),
            json("Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_EQ(cell(ColumnType::text, std::string("")), json(""));
}

TEST(ResultEncoderTest, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(cell(ColumnType::text, std::string("ab\xFF"
                                               "cd")),
            json("ab\xEF\xBF\xBD"
                 "cd"));
  EXPECT_EQ(cell(ColumnType::text, std::string("\xC3")), json("\xEF\xBF\xBD"));
  EXPECT_EQ(cell(ColumnType::text, std::string("\xED\xA0\x80")),
            json("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
  // Column names come from the database too.
  const Encoded e = encode({column("bad\xFFname", ColumnType::text)}, {});
  EXPECT_EQ(e.parsed()["columns"][0]["name"], json("bad\xEF\xBF\xBDname"));
}

TEST(ResultEncoderTest, BinaryIsBase64WithPadding) {
  EXPECT_EQ(cell(ColumnType::binary, bytes("")), json(""));
  EXPECT_EQ(cell(ColumnType::binary, bytes("f")), json("Zg=="));
  EXPECT_EQ(cell(ColumnType::binary, bytes("fo")), json("Zm8="));
  EXPECT_EQ(cell(ColumnType::binary, bytes("foo")), json("Zm9v"));
  EXPECT_EQ(cell(ColumnType::binary, bytes("foobar")), json("Zm9vYmFy"));
  EXPECT_EQ(cell(ColumnType::binary, bytes(std::string_view("\0\xFF\xFE", 3))), json("AP/+"));
}

TEST(ResultEncoderTest, DatesAndTimesAreIso8601) {
  EXPECT_EQ(cell(ColumnType::date, pool::Date{2024, 2, 29}), json("2024-02-29"));
  EXPECT_EQ(cell(ColumnType::date, pool::Date{7, 1, 5}), json("0007-01-05"));
  EXPECT_EQ(cell(ColumnType::time, pool::TimeOfDay{9, 5, 7, 0}), json("09:05:07"));
  EXPECT_EQ(cell(ColumnType::time, pool::TimeOfDay{23, 59, 59, 500'000'000}), json("23:59:59.5"));
  EXPECT_EQ(cell(ColumnType::time, pool::TimeOfDay{0, 0, 0, 1'000}), json("00:00:00.000001"));
  EXPECT_EQ(cell(ColumnType::time, pool::TimeOfDay{12, 0, 1, 123'456'789}),
            json("12:00:01.123456789"));
  EXPECT_EQ(cell(ColumnType::time, pool::TimeOfDay{12, 0, 1, 1}), json("12:00:01.000000001"));
  EXPECT_EQ(cell(ColumnType::timestamp, pool::Timestamp{{1999, 12, 31}, {23, 59, 58, 0}}),
            json("1999-12-31T23:59:58"));
  EXPECT_EQ(cell(ColumnType::timestamp, pool::Timestamp{{2025, 6, 18}, {8, 30, 0, 250'000'000}}),
            json("2025-06-18T08:30:00.25"));
}

// The year is an int32 and backends other than ODBC (whose SQL_DATE_STRUCT year is 16-bit)
// may hand any value; the formatting buffer must not be overrun.
TEST(ResultEncoderTest, ExtremeDateFieldsStayInsideTheFormatBuffer) {
  EXPECT_EQ(cell(ColumnType::date, pool::Date{std::numeric_limits<std::int32_t>::min(), 12, 31}),
            json("-2147483648-12-31"));
  EXPECT_EQ(cell(ColumnType::date, pool::Date{std::numeric_limits<std::int32_t>::max(), 12, 31}),
            json("2147483647-12-31"));
}

TEST(ResultEncoderTest, TextRenderingIsTabSeparatedWithAFooter) {
  const Encoded e = encode(
      {column("id", ColumnType::integer), column("name", ColumnType::text),
       column("price", ColumnType::decimal), column("ok", ColumnType::boolean),
       column("at", ColumnType::timestamp), column("blob", ColumnType::binary),
       column("big", ColumnType::integer), column("f", ColumnType::floating)},
      {{std::int64_t{1}, std::string("ann"), pool::Decimal{"9.90"}, true,
        pool::Timestamp{{2024, 1, 2}, {3, 4, 5, 0}}, bytes("fo"), std::int64_t{1} << 60, 0.5},
       {std::int64_t{2}, pool::Null{}, pool::Null{}, false, pool::Null{}, bytes(""),
        std::int64_t{-3}, std::numeric_limits<double>::quiet_NaN()}});
  EXPECT_EQ(e.text,
            "id\tname\tprice\tok\tat\tblob\tbig\tf\n"
            "1\tann\t9.90\ttrue\t2024-01-02T03:04:05\tZm8=\t1152921504606846976\t0.5\n"
            "2\tNULL\tNULL\tfalse\tNULL\t\t-3\tNaN\n"
            "(2 rows)\n");
}

TEST(ResultEncoderTest, DatesAndTimesReadTheSameInTheTextAsInTheJson) {
  const std::vector<std::pair<ColumnType, Param>> cases = {
      {ColumnType::date, pool::Date{7, 1, 5}},
      {ColumnType::date, pool::Date{12345, 6, 7}},  // five-digit year: the general path
      {ColumnType::date, pool::Date{-44, 3, 15}},
      {ColumnType::time, pool::TimeOfDay{0, 0, 0, 1}},
      {ColumnType::time, pool::TimeOfDay{23, 59, 59, 999'999'999}},
      {ColumnType::time, pool::TimeOfDay{200, 7, 8, 120'000'000}},  // out of range, not UB
      {ColumnType::timestamp, pool::Timestamp{{2025, 12, 31}, {23, 59, 59, 10'000'000}}},
  };
  for (const auto& [type, value] : cases) {
    const std::string text = text_cell(type, value);
    EXPECT_EQ(cell(type, value), json(text)) << text;
  }
  EXPECT_EQ(text_cell(ColumnType::date, pool::Date{12345, 6, 7}), "12345-06-07");
  EXPECT_EQ(text_cell(ColumnType::date, pool::Date{-44, 3, 15}), "-044-03-15");
  EXPECT_EQ(text_cell(ColumnType::time, pool::TimeOfDay{200, 7, 8, 120'000'000}), "200:07:08.12");
  EXPECT_EQ(
      text_cell(ColumnType::timestamp, pool::Timestamp{{2025, 12, 31}, {23, 59, 59, 10'000'000}}),
      "2025-12-31T23:59:59.01");
}

TEST(ResultEncoderTest, TextRenderingKeepsOneRowPerLine) {
  EXPECT_EQ(text_cell(ColumnType::text, std::string("a\tb\nc\rd")), "a b c d");
  EXPECT_EQ(text_cell(ColumnType::text, std::string("\r\n")), "  ");
  // The structured JSON keeps the value exactly.
  EXPECT_EQ(cell(ColumnType::text, std::string("a\tb\nc\rd")), json("a\tb\nc\rd"));
}

TEST(ResultEncoderTest, TextRenderingFooterSaysOneRowAndZeroRows) {
  EXPECT_EQ(encode({column("n")}, {{std::string("x")}}).text, "n\nx\n(1 row)\n");
  EXPECT_EQ(encode({column("n")}, {}).text, "n\n(0 rows)\n");
}

TEST(ResultEncoderTest, TextRenderingKeepsColumnNamesOnTheHeaderLine) {
  const Encoded e =
      encode({column("a\nb"), column("c\td")}, {{std::string("1"), std::string("2")}});
  EXPECT_EQ(e.text, "a b\tc d\n1\t2\n(1 row)\n");
}

TEST(ResultEncoderTest, RowCapStopsAtMaxRowsAndMarksTruncated) {
  std::vector<std::vector<Param>> rows;
  for (std::int64_t i = 0; i < 5; ++i) rows.push_back({i});
  const Encoded e = encode({column("n", ColumnType::integer)}, rows, {3, 1 << 20});
  EXPECT_TRUE(e.stopped) << "the sink asks the backend to stop fetching";
  EXPECT_EQ(e.rows_accepted, 3u);
  EXPECT_EQ(e.row_count, 3u);
  EXPECT_TRUE(e.truncated);
  const json j = e.parsed();
  EXPECT_EQ(j["rows"], json::parse("[[0],[1],[2]]"));
  EXPECT_EQ(j["rowCount"], 3);
  EXPECT_EQ(j["truncated"], true);
  EXPECT_EQ(e.text, "n\n0\n1\n2\n(3 rows; truncated, more rows exist)\n");
}

TEST(ResultEncoderTest, ExactlyMaxRowsIsNotTruncated) {
  const Encoded e = encode({column("n", ColumnType::integer)},
                           {{std::int64_t{1}}, {std::int64_t{2}}}, {2, 1 << 20});
  EXPECT_FALSE(e.stopped);
  EXPECT_FALSE(e.truncated);
  EXPECT_EQ(e.parsed()["truncated"], false);
  EXPECT_EQ(e.parsed()["rowCount"], 2);
}

TEST(ResultEncoderTest, ByteCapLeavesOutTheRowThatDoesNotFit) {
  std::vector<std::vector<Param>> rows;
  for (int i = 0; i < 10; ++i) rows.push_back({std::string(40, static_cast<char>('a' + i))});
  // Each row is ["<40 chars>"] = 44 bytes plus a comma: two fit in 100 bytes, three do not.
  const Encoded e = encode({column("s")}, rows, {1000, 100});
  EXPECT_TRUE(e.stopped);
  EXPECT_TRUE(e.truncated);
  EXPECT_EQ(e.row_count, 2u);
  json j;
  ASSERT_NO_THROW(j = e.parsed()) << e.structured;
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][1][0], std::string(40, 'b'));
  EXPECT_EQ(j["rowCount"], 2);
  EXPECT_EQ(j["truncated"], true);
  EXPECT_EQ(e.text.find(std::string(40, 'c')), std::string::npos)
      << "the text leaves the row out too";
  EXPECT_NE(e.text.find("(2 rows; truncated, more rows exist)"), std::string::npos) << e.text;
}

TEST(ResultEncoderTest, ByteCapSmallerThanTheFirstRowGivesValidEmptyRows) {
  const Encoded e = encode({column("s")}, {{std::string(64, 'x')}}, {1000, 10});
  json j;
  ASSERT_NO_THROW(j = e.parsed()) << e.structured;
  EXPECT_EQ(j["rows"], json::array());
  EXPECT_EQ(j["rowCount"], 0);
  EXPECT_EQ(j["truncated"], true);
}

TEST(ResultEncoderTest, ByteCapKeepsEscapedAndMultiByteOutputValid) {
  std::vector<std::vector<Param>> rows;
  for (int i = 0; i < 50; ++i) {
    rows.push_back({std::string("\"\\\n\x01\xC3\xA9\xFF" + std::to_string(i))});
  }
  for (std::size_t cap : {1u, 17u, 33u, 100u, 250u, 777u}) {
    const Encoded e = encode({column("s")}, rows, {1000, cap});
    json j;
    ASSERT_NO_THROW(j = e.parsed()) << "cap " << cap << ": " << e.structured;
    EXPECT_EQ(j["rows"].size(), e.row_count) << "cap " << cap;
    EXPECT_TRUE(e.truncated) << "cap " << cap;
  }
}

TEST(ResultEncoderTest, StatementWithoutResultSetReportsRowsAffected) {
  std::string structured, text;
  ResultEncoder enc(structured, text, {});
  enc.finish(7);
  const json j = json::parse(structured);
  EXPECT_EQ(j, json::parse(
                   R"({"columns":[],"rows":[],"rowCount":0,"truncated":false,"rowsAffected":7})"));
  EXPECT_EQ(text, "7 rows affected\n");
}

TEST(ResultEncoderTest, StatementWithoutResultSetOrCountSaysOk) {
  std::string structured, text;
  ResultEncoder enc(structured, text, {});
  enc.finish();
  EXPECT_EQ(json::parse(structured),
            json::parse(R"({"columns":[],"rows":[],"rowCount":0,"truncated":false})"));
  EXPECT_EQ(text, "OK\n");
}

TEST(ResultEncoderTest, RowsAffectedAlongsideAResultSet) {
  const Encoded e = encode({column("id", ColumnType::integer)}, {{std::int64_t{9}}}, {}, 1);
  const json j = e.parsed();
  EXPECT_EQ(j["rowsAffected"], 1);
  EXPECT_EQ(j["rows"], json::parse("[[9]]"));
}

TEST(ResultEncoderTest, ProgressIsReportedEveryNRows) {
  std::string structured, text;
  std::vector<std::uint64_t> calls;
  ResultEncoder enc(
      structured, text, {100, 1 << 20}, [&](std::uint64_t rows) { calls.push_back(rows); }, 3);
  enc.columns(std::vector<pool::ColumnInfo>{column("n", ColumnType::integer)});
  for (std::int64_t i = 0; i < 10; ++i) {
    const std::vector<Param> r = {i};
    ASSERT_TRUE(enc.row(FakeRow(r)));
  }
  enc.finish();
  EXPECT_EQ(calls, (std::vector<std::uint64_t>{3, 6, 9}));
}

TEST(ResultEncoderTest, ProgressCountsOnlyRowsThatWereKept) {
  std::string structured, text;
  std::vector<std::uint64_t> calls;
  ResultEncoder enc(
      structured, text, {4, 1 << 20}, [&](std::uint64_t rows) { calls.push_back(rows); }, 2);
  enc.columns(std::vector<pool::ColumnInfo>{column("n", ColumnType::integer)});
  for (std::int64_t i = 0; i < 10; ++i) {
    const std::vector<Param> r = {i};
    if (!enc.row(FakeRow(r))) break;
  }
  enc.finish();
  EXPECT_EQ(calls, (std::vector<std::uint64_t>{2, 4}));
}

TEST(ResultEncoderTest, ProgressEveryZeroMeansEveryRow) {
  std::string structured, text;
  int calls = 0;
  ResultEncoder enc(
      structured, text, {}, [&](std::uint64_t) { ++calls; }, 0);
  enc.columns(std::vector<pool::ColumnInfo>{column("n", ColumnType::integer)});
  for (std::int64_t i = 0; i < 5; ++i) {
    const std::vector<Param> r = {i};
    enc.row(FakeRow(r));
  }
  EXPECT_EQ(calls, 5);
}

TEST(ResultEncoderTest, AppendsAfterExistingBufferContents) {
  std::string structured = "{\"prefix\":", text = "header\n";
  ResultEncoder enc(structured, text, {1, 1 << 20});
  enc.columns(std::vector<pool::ColumnInfo>{column("s")});
  const std::vector<Param> r = {std::string(10, 'z')};
  ASSERT_TRUE(enc.row(FakeRow(r)));
  enc.finish();
  structured += "}";
  const json j = json::parse(structured);
  EXPECT_EQ(j["prefix"]["rows"][0][0], std::string(10, 'z'));
  EXPECT_EQ(text.rfind("header\n", 0), 0u);
}

}  // namespace
}  // namespace sluice::gateway
