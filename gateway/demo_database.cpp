#include "gateway/demo_database.hpp"

#include <cstdlib>

#include "pool/row_sink.hpp"

namespace sluice::gateway {
namespace {

// Rows are generated inside SQLite from a counter, deterministically, so every first run
// builds the same warehouse.
constexpr const char* kSchema[] = {
    "PRAGMA foreign_keys = ON",
    "CREATE TABLE customers ("
    " id INTEGER PRIMARY KEY,"
    " name VARCHAR(100) NOT NULL,"
    " email VARCHAR(200) NOT NULL UNIQUE,"
    " country VARCHAR(2) NOT NULL,"
    " segment VARCHAR(20) NOT NULL CHECK (segment IN ('enterprise', 'smb', 'consumer')),"
    " created_at TIMESTAMP NOT NULL)",
    "CREATE TABLE products ("
    " id INTEGER PRIMARY KEY,"
    " sku VARCHAR(20) NOT NULL UNIQUE,"
    " name VARCHAR(100) NOT NULL,"
    " category VARCHAR(40) NOT NULL,"
    " unit_price DECIMAL(10,2) NOT NULL CHECK (unit_price > 0),"
    " active BOOLEAN NOT NULL)",
    "CREATE TABLE orders ("
    " id INTEGER PRIMARY KEY,"
    " customer_id INTEGER NOT NULL REFERENCES customers(id),"
    " ordered_at TIMESTAMP NOT NULL,"
    " status VARCHAR(12) NOT NULL CHECK (status IN ('pending','shipped','delivered','returned')),"
    " total DECIMAL(12,2) NOT NULL DEFAULT 0)",
    "CREATE TABLE order_items ("
    " order_id INTEGER NOT NULL REFERENCES orders(id),"
    " line_no INTEGER NOT NULL,"
    " product_id INTEGER NOT NULL REFERENCES products(id),"
    " quantity INTEGER NOT NULL CHECK (quantity > 0),"
    " unit_price DECIMAL(10,2) NOT NULL,"
    " PRIMARY KEY (order_id, line_no))",
    "CREATE INDEX orders_customer ON orders(customer_id)",
    "CREATE INDEX orders_ordered_at ON orders(ordered_at)",
    "CREATE INDEX order_items_product ON order_items(product_id)",
    "CREATE TEMP TABLE first_names(i INTEGER PRIMARY KEY, v TEXT)",
    "INSERT INTO first_names(v) VALUES ('Ada'),('Bruno'),('Chloé'),('Dmitri'),('Elif'),"
    "('Farid'),('Grace'),('Hiro'),('Inés'),('José'),('Kwame'),('Leila'),('Mateo'),('Nora'),"
    "('Øystein'),('Priya'),('Quinn'),('Rafael'),('Søren'),('Zoë')",
    "CREATE TEMP TABLE last_names(i INTEGER PRIMARY KEY, v TEXT)",
    "INSERT INTO last_names(v) VALUES ('Alvarez'),('Becker'),('Chen'),('Dubois'),('Eriksen'),"
    "('Fischer'),('García'),('Hughes'),('Ivanova'),('Jansen'),('Kowalski'),('Lopez'),"
    "('Müller'),('Nakamura'),('Okafor'),('Petrov'),('Rossi'),('Singh'),('Tanaka'),('Weiß')",
    "CREATE TEMP TABLE countries(i INTEGER PRIMARY KEY, v TEXT)",
    "INSERT INTO countries(v) VALUES ('US'),('DE'),('FR'),('GB'),('JP'),('BR'),('IN'),('NG'),"
    "('ES'),('SE')",
    "CREATE TEMP TABLE categories(i INTEGER PRIMARY KEY, v TEXT)",
    "INSERT INTO categories(v) VALUES ('Hardware'),('Software'),('Books'),('Garden'),"
    "('Kitchen'),('Outdoors'),('Toys'),('Office')",
    "INSERT INTO customers(id, name, email, country, segment, created_at) "
    "WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < 5000) "
    "SELECT x, f.v || ' ' || l.v, 'customer' || x || '@example.com', c.v, "
    " CASE x % 3 WHEN 0 THEN 'enterprise' WHEN 1 THEN 'smb' ELSE 'consumer' END, "
    " datetime('2022-01-01', '+' || (x * 37 % 1000) || ' days', "
    "          '+' || (x * 7919 % 86400) || ' seconds') "
    "FROM seq JOIN first_names f ON f.i = 1 + x % 20 JOIN last_names l ON l.i = 1 + (x / 20) % 20 "
    "JOIN countries c ON c.i = 1 + (x * 13) % 10",
    "INSERT INTO products(id, sku, name, category, unit_price, active) "
    "WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < 500) "
    "SELECT x, printf('SKU-%05d', x), c.v || ' item ' || x, c.v, "
    " round(2 + (x * 7919 % 49800) / 100.0, 2), x % 17 <> 0 "
    "FROM seq JOIN categories c ON c.i = 1 + x % 8",
    "INSERT INTO orders(id, customer_id, ordered_at, status) "
    "WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < 15000) "
    "SELECT x, 1 + (x * 7919) % 5000, "
    " datetime('2023-01-01', '+' || (x * 13 % 700) || ' days', "
    "          '+' || (x * 104729 % 86400) || ' seconds'), "
    " CASE WHEN x % 29 = 0 THEN 'returned' WHEN x % 7 = 0 THEN 'pending' "
    "      WHEN x % 3 = 0 THEN 'shipped' ELSE 'delivered' END "
    "FROM seq",
    "INSERT INTO order_items(order_id, line_no, product_id, quantity, unit_price) "
    "WITH RECURSIVE lines(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM lines WHERE n < 4) "
    "SELECT o.id, lines.n, p.id, 1 + (o.id * lines.n * 31) % 5, p.unit_price "
    "FROM orders o JOIN lines ON lines.n <= 1 + (o.id * 17) % 4 "
    "JOIN products p ON p.id = 1 + (o.id * 7 + lines.n * 131) % 500",
    "UPDATE orders SET total = (SELECT round(sum(quantity * unit_price), 2) FROM order_items i "
    "WHERE i.order_id = orders.id)",
    "CREATE VIEW customer_revenue AS "
    "SELECT c.id AS customer_id, c.name, c.country, c.segment, count(o.id) AS orders, "
    " round(coalesce(sum(o.total), 0), 2) AS revenue "
    "FROM customers c LEFT JOIN orders o ON o.customer_id = c.id AND o.status <> 'returned' "
    "GROUP BY c.id",
    "CREATE VIEW monthly_sales AS "
    "SELECT strftime('%Y-%m', o.ordered_at) AS month, count(DISTINCT o.id) AS orders, "
    " sum(i.quantity) AS units, round(sum(i.quantity * i.unit_price), 2) AS revenue "
    "FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.status <> 'returned' "
    "GROUP BY 1",
};

}  // namespace

std::filesystem::path DemoDatabase::default_path() {
  if (const char* p = std::getenv("SLUICE_DEMO_DB"); p != nullptr && *p != '\0') return p;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x != nullptr && *x != '\0') {
    return std::filesystem::path(x) / "sluice" / "demo.sqlite";
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return std::filesystem::path(h) / ".local" / "share" / "sluice" / "demo.sqlite";
  }
  return std::filesystem::path("sluice-demo.sqlite");
}

std::string DemoDatabase::connection_string(const std::filesystem::path& path) {
  return "Driver={SQLite3};Database=" + path.string() + ";JournalMode=WAL;Timeout=5000;";
}

asio::awaitable<void> DemoDatabase::populate(pool::Backend& backend) {
  const auto deadline = pool::Clock::now() + std::chrono::minutes(2);
  auto conn = co_await backend.connect(deadline);
  pool::DiscardRows sink;
  pool::Statement begin{"BEGIN", {}};
  co_await conn->execute(begin, sink, deadline);
  for (const char* sql : kSchema) {
    pool::Statement stmt{sql, {}};
    co_await conn->execute(stmt, sink, deadline);
  }
  pool::Statement commit{"COMMIT", {}};
  co_await conn->execute(commit, sink, deadline);
  co_await conn->close();
}

}  // namespace sluice::gateway
