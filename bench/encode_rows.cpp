// encode_rows: CPU time of turning one result into a tool answer, without a database or a
// network. Encodes the 100-row `orders` result of bench/run.sh (id, customer_id, a
// timestamp, a status, a decimal total, items) into the structured JSON and the text
// rendering, then escapes the text into the JSON-RPC answer as the engine does, many times
// over, and prints the mean per result.
//
//   build/bench-rel/bench/encode_rows [--rounds N]
//
// A figure to compare before and after a change to gateway/result_encoder.cpp or
// gateway/json_writer.cpp: run both builds one after the other on a quiet machine.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gateway/json_writer.hpp"
#include "gateway/result_encoder.hpp"

namespace {

using namespace sluice;

class Row final : public pool::RowView {
 public:
  explicit Row(std::vector<pool::Value> cells) : cells_(std::move(cells)) {}
  std::size_t size() const noexcept override { return cells_.size(); }
  pool::Value operator[](std::size_t i) const override { return cells_[i]; }

 private:
  std::vector<pool::Value> cells_;
};

}  // namespace

int main(int argc, char** argv) {
  long rounds = 20'000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::strtol(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: encode_rows [--rounds N]\n");
      return 2;
    }
  }
  if (rounds <= 0) rounds = 1;

  std::vector<pool::ColumnInfo> columns(6);
  const char* names[] = {"id", "customer_id", "ordered_at", "status", "total", "items"};
  const pool::ColumnType types[] = {pool::ColumnType::integer,   pool::ColumnType::integer,
                                    pool::ColumnType::timestamp, pool::ColumnType::text,
                                    pool::ColumnType::decimal,   pool::ColumnType::integer};
  for (std::size_t i = 0; i < columns.size(); ++i) {
    columns[i].name = names[i];
    columns[i].type = types[i];
  }
  std::vector<Row> rows;
  for (int r = 0; r < 100; ++r) {
    const pool::Timestamp ordered{{2025, 3, static_cast<std::uint8_t>(1 + r % 28)},
                                  {12, static_cast<std::uint8_t>(r % 60), 56, 123'000'000}};
    rows.emplace_back(std::vector<pool::Value>{std::int64_t{r + 1}, std::int64_t{4711 + r}, ordered,
                                               std::string_view("shipped"),
                                               pool::DecimalView{"123.45"}, std::int64_t{3}});
  }

  std::size_t bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  for (long n = 0; n < rounds; ++n) {
    std::string structured;
    std::string text;
    gateway::ResultEncoder encoder(structured, text, {});
    encoder.columns(columns);
    for (const Row& row : rows) encoder.row(row);
    encoder.finish(std::nullopt);
    std::string answer;
    answer.reserve(structured.size() + text.size() + 64);
    gateway::JsonWriter(answer).string(text);
    answer += structured;
    bytes += answer.size();
  }
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      static_cast<double>(rounds);
  std::printf("{\"rows\": 100, \"rounds\": %ld, \"usPerResult\": %.1f, \"bytesPerResult\": %zu}\n",
              rounds, us, bytes / static_cast<std::size_t>(rounds));
}
