#include "pool/dialect.hpp"

#include <gtest/gtest.h>

namespace sluice::pool {
namespace {

using Statements = std::vector<std::string>;

DbContext schema(std::string s) {
  DbContext c;
  c.schema = std::move(s);
  return c;
}

DbContext role(std::string r) {
  DbContext c;
  c.role = std::move(r);
  return c;
}

std::string error_of(const Dialect& d, const DbContext& from, const DbContext& to) {
  try {
    d.switch_context(from, to);
  } catch (const ContextError& e) {
    return e.what();
  }
  return "";
}

class PostgresSwitchTest : public ::testing::Test {
 protected:
  std::unique_ptr<Dialect> pg = Dialect::make(Dialect::Kind::postgresql);
};

TEST_F(PostgresSwitchTest, SameContextNeedsNoStatement) {
  EXPECT_EQ(pg->switch_context({}, {}), Statements{});
  EXPECT_EQ(pg->switch_context(schema("a"), schema("a")), Statements{});
}

TEST_F(PostgresSwitchTest, SchemaIsTheWholeSearchPathAndEmptyMeansTheConnectionDefault) {
  EXPECT_EQ(pg->switch_context({}, schema("sales")), Statements{R"(SET search_path TO "sales")"});
  EXPECT_EQ(pg->switch_context(schema("sales"), schema("Mixed Case")),
            Statements{R"(SET search_path TO "Mixed Case")"});
  EXPECT_EQ(pg->switch_context(schema("sales"), {}), Statements{"RESET search_path"});
}

TEST_F(PostgresSwitchTest, RoleIsSetOrReset) {
  EXPECT_EQ(pg->switch_context({}, role("analyst")), Statements{R"(SET ROLE "analyst")"});
  EXPECT_EQ(pg->switch_context(role("analyst"), {}), Statements{"RESET ROLE"});
  DbContext both = role("analyst");
  both.schema = "sales";
  EXPECT_EQ(pg->switch_context(schema("other"), both),
            (Statements{R"(SET ROLE "analyst")", R"(SET search_path TO "sales")"}));
}

TEST_F(PostgresSwitchTest, HostileNamesStayOneQuotedIdentifier) {
  EXPECT_EQ(pg->switch_context({}, schema(R"(x"; DROP TABLE t; --)")),
            Statements{R"(SET search_path TO "x""; DROP TABLE t; --")"});
  EXPECT_EQ(pg->switch_context({}, role(R"(a" , "b)")), Statements{R"(SET ROLE "a"" , ""b")"});
  EXPECT_EQ(pg->switch_context({}, schema("semi;colon")),
            Statements{R"(SET search_path TO "semi;colon")"});
  EXPECT_NE(error_of(*pg, {}, schema(std::string("a\0b", 3))).find("NUL"), std::string::npos);
}

TEST_F(PostgresSwitchTest, DatabaseAndWarehouseCannotBeSwitchedAndTheErrorSaysWhatToDo) {
  DbContext db;
  db.database = "other";
  const std::string e = error_of(*pg, {}, db);
  EXPECT_NE(e.find("'other'"), std::string::npos) << e;
  EXPECT_NE(e.find("leave the database empty"), std::string::npos) << e;
  DbContext wh;
  wh.warehouse = "big";
  EXPECT_NE(error_of(*pg, {}, wh).find("no warehouses"), std::string::npos);
}

TEST_F(PostgresSwitchTest, ResetSetsEveryFieldExplicitly) {
  EXPECT_EQ(pg->reset_context({}), (Statements{"RESET ROLE", "RESET search_path"}));
  DbContext both = role("r");
  both.schema = "s";
  EXPECT_EQ(pg->reset_context(both), (Statements{R"(SET ROLE "r")", R"(SET search_path TO "s")"}));
}

TEST(SqliteSwitchTest, OnlyTheDefaultContextExists) {
  auto lite = Dialect::make(Dialect::Kind::sqlite);
  EXPECT_EQ(lite->switch_context({}, {}), Statements{});
  EXPECT_EQ(lite->reset_context({}), Statements{});
  EXPECT_NE(error_of(*lite, {}, schema("main")).find("name the attached database in the query"),
            std::string::npos);
  EXPECT_NE(error_of(*lite, {}, role("r")).find("no roles"), std::string::npos);
}

class SnowflakeSwitchTest : public ::testing::Test {
 protected:
  static DbContext full() {
    DbContext c;
    c.database = "DB";
    c.schema = "S";
    c.warehouse = "WH";
    c.role = "R";
    return c;
  }
  std::unique_ptr<Dialect> sf = Dialect::make(Dialect::Kind::snowflake);
};

TEST_F(SnowflakeSwitchTest, RoleComesFirstThenWarehouseDatabaseAndQualifiedSchema) {
  EXPECT_EQ(sf->switch_context({}, full()),
            (Statements{R"(USE ROLE "R")", R"(USE WAREHOUSE "WH")", R"(USE DATABASE "DB")",
                        R"(USE SCHEMA "DB"."S")"}));
}

TEST_F(SnowflakeSwitchTest, OnlyChangedFieldsAreSwitched) {
  DbContext to = full();
  to.warehouse = "OTHER";
  EXPECT_EQ(sf->switch_context(full(), to), Statements{R"(USE WAREHOUSE "OTHER")"});
  to = full();
  to.schema = "T";
  EXPECT_EQ(sf->switch_context(full(), to), Statements{R"(USE SCHEMA "DB"."T")"});
}

TEST_F(SnowflakeSwitchTest, ANewDatabaseSetsTheSchemaAgain) {
  DbContext to = full();
  to.database = "DB2";
  EXPECT_EQ(sf->switch_context(full(), to),
            (Statements{R"(USE DATABASE "DB2")", R"(USE SCHEMA "DB2"."S")"}));
  to.schema.clear();
  EXPECT_EQ(sf->switch_context(full(), to), Statements{R"(USE DATABASE "DB2")"});
}

TEST_F(SnowflakeSwitchTest, SchemaWithoutDatabaseIsInTheCurrentDatabase) {
  EXPECT_EQ(sf->switch_context({}, schema("S")), Statements{R"(USE SCHEMA "S")"});
}

TEST_F(SnowflakeSwitchTest, NoFieldCanReturnToTheLoginDefault) {
  for (auto clear :
       {&DbContext::database, &DbContext::schema, &DbContext::warehouse, &DbContext::role}) {
    DbContext to = full();
    to.*clear = "";
    EXPECT_NE(error_of(*sf, full(), to).find("login default"), std::string::npos);
  }
  EXPECT_NE(error_of(*sf, schema("S"), {}).find("login default"), std::string::npos);
}

TEST_F(SnowflakeSwitchTest, ResetNeedsEveryFieldGiven) {
  EXPECT_EQ(sf->reset_context(full()).size(), 4u);
  EXPECT_THROW(sf->reset_context(schema("S")), ContextError);
}

TEST_F(SnowflakeSwitchTest, HostileNamesStayQuotedIdentifiers) {
  DbContext to = full();
  to.database = R"(d"; USE ROLE ACCOUNTADMIN; --)";
  to.schema = "s;s";
  const Statements s = sf->switch_context({}, to);
  EXPECT_EQ(s.at(2), R"(USE DATABASE "d""; USE ROLE ACCOUNTADMIN; --")");
  EXPECT_EQ(s.at(3), R"(USE SCHEMA "d""; USE ROLE ACCOUNTADMIN; --"."s;s")");
}

TEST(E6dataSwitchTest, CatalogAndDatabaseTravelWithEachRequestNotAsStatements) {
  auto e6 = Dialect::make(Dialect::Kind::e6data);
  DbContext to;
  to.database = "catalog";
  to.schema = "db";
  EXPECT_EQ(e6->switch_context({}, to), Statements{});
  EXPECT_EQ(e6->switch_context(to, {}), Statements{});
  EXPECT_EQ(e6->reset_context(to), Statements{});
  EXPECT_NE(error_of(*e6, {}, role("r")).find("no roles"), std::string::npos);
}

}  // namespace
}  // namespace sluice::pool
