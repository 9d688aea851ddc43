#include "gateway/json_reader.hpp"

#include <array>
#include <cstdint>
#include <utility>

#include "gateway/json_scanner.hpp"

namespace sluice::gateway {
namespace {

using json = nlohmann::json;

// Nesting at which the scanner stops and leaves the text to nlohmann's parser, which keeps
// its own stack on the heap. MCP messages nest a handful of levels.
constexpr int kMaxDepth = 128;

// Builds the document from the scanner's events, each value straight into its slot (an
// object member, an array element), so nothing is built twice.
class DocumentBuilder {
 public:
  explicit DocumentBuilder(json& root) noexcept : root_(root) {}

  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool integer(std::int64_t v) { return put(v); }
  bool unsigned_integer(std::uint64_t v) { return put(v); }
  bool floating(double v) { return put(v); }
  bool string(std::string_view v) { return put(json::string_t(v)); }
  bool begin_object() { return open(json::value_t::object); }
  bool begin_array() { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  // A repeated key overwrites the earlier value, as nlohmann's parser does.
  bool key(std::string_view name) {
    member_ = &open_[depth_ - 1]->get_ref<json::object_t&>()[json::string_t(name)];
    return true;
  }

 private:
  // Where the next value goes: the root, a new element of the open array, or the member
  // whose key came last.
  json& target() {
    if (depth_ == 0) return root_;
    json& container = *open_[depth_ - 1];
    if (container.is_array()) return container.get_ref<json::array_t&>().emplace_back();
    return *member_;
  }
  template <class V>
  bool put(V&& v) {
    target() = std::forward<V>(v);
    return true;
  }
  bool open(json::value_t type) {
    json& t = target();
    t = json(type);
    open_[depth_++] = &t;  // the scanner stops deeper than kMaxDepth
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }

  json& root_;
  // Open containers, innermost last. An element pointer stays valid while it is open: only
  // the innermost container grows.
  std::array<json*, kMaxDepth + 1> open_{};
  std::size_t depth_ = 0;
  json* member_ = nullptr;
};

}  // namespace

bool read_json(std::string_view text, json& out) {
  DocumentBuilder builder(out);
  return JsonScanner(text, builder, kMaxDepth).scan();
}

json parse_json(std::string_view text) {
  json out;
  if (read_json(text, out)) return out;
  return json::parse(text, nullptr, false);
}

}  // namespace sluice::gateway
