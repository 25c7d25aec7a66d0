// libFuzzer harness for the RESP reply parser (src/resp/reply_parser.h), which reads what other
// machines send us: a peer that is broken or hostile must cost an error, never a crash.
//
// Input layout: byte 0 picks the parser limits, byte 1 seeds how the rest is cut into reads, and
// the remaining bytes are the stream a server sends. For every input the harness checks:
//  1. the API contract of every parse() call (consumed <= size, kNeedMore consumes everything,
//     kComplete consumes something and leaves the parser idle, errors stick);
//  2. chunking independence: the stream parsed in one read and in random reads gives the same
//     replies, the same raw bytes and the same final state;
//  3. raw bytes: the raw bytes of the replies, concatenated, are exactly the consumed prefix of the
//     stream, and each reply's raw bytes parse alone to the same reply.
// Any violation aborts, which libFuzzer reports as a crash.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/assert.h"
#include "resp/reply_parser.h"

namespace {

using cairn::resp::ParseOutcome;
using cairn::resp::ParseState;
using cairn::resp::ReplyLimits;
using cairn::resp::ReplyParser;
using cairn::resp::Value;

// A complete, unambiguous rendering of a Value (lengths prefix every string).
void describe(const Value& value, std::string& out) {
  out += std::to_string(static_cast<int>(value.type));
  out += ':';
  out += std::to_string(value.integer);
  out += ':';
  out += std::to_string(value.str.size());
  out += ':';
  out += value.str;
  out += '[';
  out += std::to_string(value.elements.size());
  for (const Value& element : value.elements) describe(element, out);
  out += ']';
}

struct StreamResult {
  std::vector<std::string> values;
  std::vector<std::string> raws;
  std::string error;
  bool idle = true;
  bool operator==(const StreamResult&) const = default;
};

// Small limits reach the limit paths with short inputs; the larger ones stay well below the real
// defaults so a fuzzed `$536870912` cannot make the harness wait for half a gigabyte.
ReplyLimits limits_for(uint8_t selector) {
  if (selector & 1) return {.bulk_bytes_max = 16, .elements_max = 6, .depth_max = 3};
  return {.bulk_bytes_max = 1 << 20, .elements_max = 4096, .depth_max = 32};
}

// Deterministic chunk sizes from a seed (xorshift), mostly small to split headers everywhere.
class Chunker {
 public:
  explicit Chunker(uint32_t seed) : state_(seed * 2654435761u + 1) {}
  size_t next(size_t remaining) {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    const size_t size = (state_ & 0x100) ? 1 + state_ % 4 : 1 + state_ % 64;
    return size < remaining ? size : remaining;
  }

 private:
  uint32_t state_;
};

StreamResult parse_stream(std::string_view stream, const ReplyLimits& limits, Chunker* chunker) {
  ReplyParser parser(limits);
  StreamResult result;
  size_t position = 0;
  while (position < stream.size()) {
    const size_t chunk_size =
        chunker != nullptr ? chunker->next(stream.size() - position) : stream.size() - position;
    std::string_view chunk = stream.substr(position, chunk_size);
    position += chunk_size;
    while (true) {
      Value value;
      std::string raw;
      const ParseOutcome outcome = parser.parse(chunk, value, &raw);
      CAIRN_ASSERT(outcome.consumed <= chunk.size(), "fuzz invariant");
      if (outcome.state == ParseState::kError) {
        CAIRN_ASSERT(!outcome.error.empty(), "fuzz invariant");
        const ParseOutcome again = parser.parse(chunk, value, &raw);
        CAIRN_ASSERT(again.state == ParseState::kError && again.error == outcome.error,
                     "fuzz invariant");
        result.error = outcome.error;
        result.idle = false;
        return result;
      }
      if (outcome.state == ParseState::kNeedMore) {
        CAIRN_ASSERT(outcome.consumed == chunk.size(), "fuzz invariant");
        break;
      }
      CAIRN_ASSERT(outcome.consumed > 0, "fuzz invariant");
      CAIRN_ASSERT(parser.idle(), "fuzz invariant");
      chunk.remove_prefix(outcome.consumed);
      std::string description;
      describe(value, description);
      result.values.push_back(std::move(description));
      result.raws.push_back(std::move(raw));
    }
  }
  result.idle = parser.idle();
  return result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const ReplyLimits limits = limits_for(data[0]);
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  const StreamResult whole = parse_stream(stream, limits, nullptr);
  Chunker chunker(data[1] | (static_cast<uint32_t>(data[0]) << 8));
  const StreamResult chunked = parse_stream(stream, limits, &chunker);
  CAIRN_ASSERT(whole == chunked, "fuzz invariant");

  std::string concatenated;
  for (const std::string& raw : whole.raws) concatenated += raw;
  CAIRN_ASSERT(stream.substr(0, concatenated.size()) == concatenated, "fuzz invariant");
  for (size_t i = 0; i < whole.raws.size(); ++i) {
    const StreamResult alone = parse_stream(whole.raws[i], limits, nullptr);
    CAIRN_ASSERT(alone.error.empty() && alone.idle && alone.values.size() == 1, "fuzz invariant");
    CAIRN_ASSERT(alone.values[0] == whole.values[i] && alone.raws[0] == whole.raws[i],
                 "fuzz invariant");
  }
  return 0;
}
