#include "load/src/jsonrpc_reply.hpp"

#include <nlohmann/json.hpp>

#include <limits>

#include "gateway/json_scanner.hpp"

namespace sluice::load {
namespace {

// Where the parser is: the few places whose values matter, and "elsewhere".
enum class Where : std::uint8_t { top, result, error, content, content_item, other };

class ReplySax {
 public:
  explicit ReplySax(JsonRpcReply& out) : out_(out) {}

  bool null() {
    if (at(Where::top, "id")) out_.id_is_null = true;
    return done_value();
  }
  bool boolean(bool value) {
    if (at(Where::result, "isError")) out_.is_error_result = value;
    return done_value();
  }
  bool number_integer(std::int64_t value) { return integer(value, true); }
  bool number_unsigned(std::uint64_t value) {
    const bool fits = value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return integer(fits ? static_cast<std::int64_t>(value) : 0, fits);
  }
  bool number_float(double, const std::string&) { return done_value(); }
  bool string(std::string& value) { return string(std::string_view(value)); }
  bool string(std::string_view value) {
    if (at(Where::top, "method")) has_method_ = true;
    if (at(Where::error, "message") || (at(Where::content_item, "text") && !text_taken_)) {
      if (in(Where::content_item)) text_taken_ = true;
      if (!out_.has_error || in(Where::error)) {
        out_.detail.assign(value, 0, std::min(value.size(), JsonRpcReply::kDetailLimit));
      }
    }
    return done_value();
  }
  bool binary(nlohmann::json::binary_t&) { return done_value(); }

  bool start_object(std::size_t) {
    Where next = Where::other;
    if (stack_depth_ == 0) {
      next = Where::top;
    } else if (at(Where::top, "result")) {
      next = Where::result;
      out_.has_result = true;
    } else if (at(Where::top, "error")) {
      next = Where::error;
      out_.has_error = true;
    } else if (in(Where::content) && !content_item_seen_) {
      next = Where::content_item;
      content_item_seen_ = true;
    }
    return push(next);
  }
  bool end_object() { return pop(); }
  bool start_array(std::size_t) {
    return push(at(Where::result, "content") ? Where::content : Where::other);
  }
  bool end_array() { return pop(); }
  bool key(std::string& name) { return key(std::string_view(name)); }
  bool key(std::string_view name) {
    // No key that matters is longer; a short copy never leaves the string's inline buffer.
    key_.assign(name, 0, std::min<std::size_t>(name.size(), 15));
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

  // The same events from gateway::JsonScanner.
  bool integer(std::int64_t value) { return number_integer(value); }
  bool unsigned_integer(std::uint64_t value) { return number_unsigned(value); }
  bool floating(double) { return done_value(); }
  bool begin_object() { return start_object(0); }
  bool begin_array() { return start_array(0); }

  bool top_was_object() const noexcept { return top_seen_; }
  bool has_method() const noexcept { return has_method_; }
  bool has_id() const noexcept { return has_id_; }

 private:
  bool in(Where w) const noexcept {
    return stack_depth_ > 0 && stack_depth_ <= kStack && stack_[stack_depth_ - 1] == w;
  }
  bool at(Where w, std::string_view name) const noexcept { return in(w) && key_ == name; }

  bool integer(std::int64_t value, bool fits) {
    if (at(Where::top, "id")) {
      out_.id_is_integer = fits;
      out_.id = value;
    } else if (at(Where::error, "code")) {
      out_.error_code = value;
    }
    return done_value();
  }
  bool done_value() {
    if (in(Where::top) && key_ == "id") has_id_ = true;
    return true;
  }
  bool push(Where w) {
    if (stack_depth_ == 0) top_seen_ = w == Where::top;
    // Depth beyond the stack only matters as depth: everything deeper is "other".
    if (stack_depth_ < kStack) stack_[stack_depth_] = w;
    ++stack_depth_;
    key_.clear();
    return true;
  }
  bool pop() {
    if (stack_depth_ > 0) --stack_depth_;
    key_.clear();
    return true;
  }

  static constexpr std::size_t kStack = 8;
  JsonRpcReply& out_;
  Where stack_[kStack]{};
  std::size_t stack_depth_ = 0;
  std::string key_;
  bool top_seen_ = false;
  bool has_method_ = false;
  bool has_id_ = false;
  bool content_item_seen_ = false;
  bool text_taken_ = false;
};

void reset(JsonRpcReply& out) {
  std::string detail = std::move(out.detail);
  detail.clear();
  out = JsonRpcReply{};
  out.detail = std::move(detail);
}

// The message's type, from what `sax` saw of a text that parsed (`parsed`) or not.
void classify(const ReplySax& sax, bool parsed, JsonRpcReply& out) {
  if (!parsed || !sax.top_was_object()) {
    out.type = JsonRpcReply::Type::invalid;
  } else if (sax.has_method()) {
    out.type = sax.has_id() ? JsonRpcReply::Type::request : JsonRpcReply::Type::notification;
  } else if (out.has_result || out.has_error) {
    out.type = JsonRpcReply::Type::response;
  } else {
    out.type = JsonRpcReply::Type::invalid;
  }
}

}  // namespace

void parse_jsonrpc_reply(std::string_view message, JsonRpcReply& out) {
  // The scanner reads a reply in a fraction of the time of nlohmann's lexer, which copies
  // every byte into a token buffer (a 10 KB reply cost the generator more CPU than the
  // gateway spent answering it). What the scanner does not take (not JSON, or one of the
  // rare texts it leaves to a full parser) nlohmann's parser decides, as before.
  reset(out);
  {
    ReplySax sax(out);
    if (gateway::JsonScanner(message, sax).scan()) return classify(sax, true, out);
  }
  reset(out);
  ReplySax sax(out);
  const bool parsed = nlohmann::json::sax_parse(message.begin(), message.end(), &sax,
                                                nlohmann::json::input_format_t::json, true);
  classify(sax, parsed, out);
}

CallOutcome judge_reply(const JsonRpcReply& reply, std::int64_t expected_id) {
  if (reply.type != JsonRpcReply::Type::response) {
    return {ErrorKind::protocol, 0, "the answer is not a JSON-RPC response"};
  }
  // An error about the request itself may carry id null (the server could not read the id).
  if (!reply.matches(expected_id) && !(reply.has_error && reply.id_is_null)) {
    return {ErrorKind::protocol, 0, "the response's id is not the request's"};
  }
  if (reply.has_error) return {ErrorKind::jsonrpc, reply.error_code, reply.detail};
  if (reply.is_error_result) return {ErrorKind::tool, 0, reply.detail};
  return {};
}

}  // namespace sluice::load
