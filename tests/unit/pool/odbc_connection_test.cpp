#include "pool/odbc_connection.hpp"

#include <gtest/gtest.h>

#include "pool/odbc_handle.hpp"

namespace sluice::pool {
namespace {

TEST(OdbcConnectionTest, RedactsPasswordsInConnectionStrings) {
  EXPECT_EQ(redact_connection_string("Driver={PostgreSQL Unicode};Server=h;Uid=u;Pwd=secret;"),
            "Driver={PostgreSQL Unicode};Server=h;Uid=u;Pwd=***;");
  EXPECT_EQ(redact_connection_string("DSN=x;PASSWORD=abc"), "DSN=x;PASSWORD=***");
  EXPECT_EQ(redact_connection_string("Driver={SQLite3};Database=/tmp/a.db"),
            "Driver={SQLite3};Database=/tmp/a.db");
}

TEST(OdbcConnectionTest, ClassifiesSqlstates) {
  EXPECT_EQ(classify_sqlstate("08S01"), errc::connection_lost);
  EXPECT_EQ(classify_sqlstate("08001"), errc::connection_lost);
  EXPECT_EQ(classify_sqlstate("57P01"), errc::connection_lost);
  EXPECT_EQ(classify_sqlstate("57014"), errc::cancelled);
  EXPECT_EQ(classify_sqlstate("HY008"), errc::cancelled);
  EXPECT_EQ(classify_sqlstate("HYT00"), errc::statement_timeout);
  EXPECT_EQ(classify_sqlstate("42601"), errc::statement_failed);
}

TEST(OdbcConnectionTest, DbErrorNamesSourceAndDiagnostic) {
  DbError e(errc::statement_failed, "warehouse", {"42P01", 7, "relation \"x\" does not exist"});
  const std::string what = e.what();
  EXPECT_NE(what.find("source 'warehouse'"), std::string::npos);
  EXPECT_NE(what.find("relation \"x\" does not exist"), std::string::npos);
  EXPECT_NE(what.find("SQLSTATE 42P01"), std::string::npos);
  EXPECT_EQ(e.kind(), errc::statement_failed);
  EXPECT_EQ(e.code(), make_error_code(errc::statement_failed));
}

}  // namespace
}  // namespace sluice::pool
