#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace sluice::gateway {

// Reads one JSON text (RFC 8259) into an nlohmann::json document, as nlohmann's own parser
// would, for a fraction of its cost: nlohmann's lexer copies every byte it reads into a token
// buffer and goes through an input adapter and a SAX stack per value, which made parsing the
// largest single item of a small tools/call (about 15,000 instructions for 100 bytes).
//
// The document is the one nlohmann builds for the same text: the same value types
// (non-negative integers unsigned, negative ones signed, integers too large for 64 bits as
// doubles), the last of duplicate keys kept, \u escapes and surrogate pairs decoded, strings
// required to be well-formed UTF-8. Differential tests hold the two to that.
//
// Returns false, leaving `out` unspecified, when the text is not JSON, and also for the rare
// inputs it leaves to nlohmann: nesting deeper than 128 levels, a byte-order mark, numbers
// beyond a double's range. parse_json() below is the entry point that handles every input.
bool read_json(std::string_view text, nlohmann::json& out);

// read_json(), else nlohmann's parser: the document, or a discarded value (is_discarded())
// when the text is not JSON.
nlohmann::json parse_json(std::string_view text);

}  // namespace sluice::gateway
