#include "session/context_handles.hpp"

#include <array>
#include <charconv>
#include <vector>

namespace sluice::session {
namespace {

using SysClock = std::chrono::system_clock;
// Fields are separated by the ASCII unit separator, which identifiers and client names here
// cannot usefully contain; any that do are refused at mint time by the caller's validation
// and replaced here, so a field can never spill into the next.
constexpr char kSep = '\x1f';
constexpr std::string_view kPrefix = "c1";

void append(std::string& out, std::string_view field) {
  out += kSep;
  for (char c : field) out += c == kSep ? ' ' : c;
}

}  // namespace

ContextHandles::ContextHandles(TokenSigner signer, std::chrono::seconds max_age)
    : signer_(std::move(signer)), max_age_(max_age) {}

std::string ContextHandles::mint(std::string_view client, const Context& context) const {
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(SysClock::now().time_since_epoch()).count();
  std::string payload(kPrefix);
  append(payload, std::to_string(now));
  append(payload, client);
  append(payload, context.source);
  append(payload, context.db.database);
  append(payload, context.db.schema);
  append(payload, context.db.warehouse);
  append(payload, context.db.role);
  return signer_.sign(payload);
}

std::variant<ContextHandles::Context, std::string> ContextHandles::open(
    std::string_view handle, std::string_view client) const {
  const auto payload = signer_.verify(handle);
  if (!payload) {
    return std::string(
        "the context handle is not valid (damaged, forged, or signed with another key); call "
        "set_context for a new one");
  }
  std::vector<std::string_view> fields;
  std::string_view rest(*payload);
  for (auto pos = rest.find(kSep); pos != std::string_view::npos; pos = rest.find(kSep)) {
    fields.push_back(rest.substr(0, pos));
    rest.remove_prefix(pos + 1);
  }
  fields.push_back(rest);
  if (fields.size() != 8 || fields[0] != kPrefix) {
    return std::string("the context handle is not valid; call set_context for a new one");
  }
  std::int64_t issued = 0;
  std::from_chars(fields[1].data(), fields[1].data() + fields[1].size(), issued);
  const auto age = SysClock::now() - SysClock::time_point(std::chrono::seconds(issued));
  if (age > max_age_) {
    return std::string("the context handle expired (handles last ") +
           std::to_string(max_age_.count()) + " s); call set_context for a new one";
  }
  if (fields[2] != client) {
    return std::string(
        "the context handle was minted for another client; call set_context for your own");
  }
  Context c;
  c.source = fields[3];
  c.db = {std::string(fields[4]), std::string(fields[5]), std::string(fields[6]),
          std::string(fields[7])};
  return c;
}

}  // namespace sluice::session
