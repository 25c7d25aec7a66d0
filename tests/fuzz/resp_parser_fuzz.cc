// libFuzzer harness for the RESP request parser (docs/fault-testing.md).
//
// Input layout: byte 0 picks the parser limits, byte 1 seeds how the rest is cut into reads, and
// the remaining bytes are the stream a client sends. For every input the harness checks:
//  1. the API contract of every parse() call (consumed <= size, kNeedMore consumes everything,
//     kComplete consumes something and leaves the parser idle, nothing is called after kError);
//  2. chunking independence: the stream parsed in one read and in random reads gives the same
//     requests and the same final state;
//  3. round trip: each parsed request, written back as a multibulk with ReplyWriter, parses to
//     the same arguments.
// Any violation aborts, which libFuzzer reports as a crash.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/assert.h"
#include "resp/parser.h"
#include "resp/writer.h"

namespace {

using cairn::resp::ParseOutcome;
using cairn::resp::ParserLimits;
using cairn::resp::ParseState;
using cairn::resp::ReplyWriter;
using cairn::resp::RequestParser;

struct StreamResult {
  std::vector<std::vector<std::string>> requests;
  std::string error;
  bool idle = true;
  bool operator==(const StreamResult&) const = default;
};

// Small limits reach the "too big" and "invalid length" paths with short inputs; the larger ones
// stay well below the real defaults so a fuzzed `$536870912` cannot reserve half a gigabyte.
ParserLimits limits_for(uint8_t selector) {
  if (selector & 1) return {.bulk_bytes_max = 64, .arguments_max = 8, .inline_bytes_max = 32};
  return {.bulk_bytes_max = 1 << 20, .arguments_max = 1024, .inline_bytes_max = 64 * 1024};
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

StreamResult parse_stream(std::string_view stream, const ParserLimits& limits, Chunker* chunker) {
  RequestParser parser(limits);
  StreamResult result;
  std::vector<std::string> args;
  size_t position = 0;
  while (position < stream.size()) {
    const size_t chunk_size =
        chunker != nullptr ? chunker->next(stream.size() - position) : stream.size() - position;
    std::string_view chunk = stream.substr(position, chunk_size);
    position += chunk_size;
    while (true) {
      const ParseOutcome outcome = parser.parse(chunk, args);
      CAIRN_ASSERT(outcome.consumed <= chunk.size(), "fuzz invariant");
      if (outcome.state == ParseState::kError) {
        CAIRN_ASSERT(!outcome.error.empty(), "fuzz invariant");
        result.error = outcome.error;
        result.idle = false;
        return result;  // the parser must not be used again
      }
      if (outcome.state == ParseState::kNeedMore) {
        CAIRN_ASSERT(outcome.consumed == chunk.size(), "fuzz invariant");
        break;
      }
      CAIRN_ASSERT(outcome.consumed > 0, "fuzz invariant");
      CAIRN_ASSERT(parser.idle(), "fuzz invariant");
      chunk.remove_prefix(outcome.consumed);
      result.requests.push_back(args);
    }
  }
  result.idle = parser.idle();
  return result;
}

void check_round_trip(const std::vector<std::string>& args, const ParserLimits& limits) {
  if (args.empty() || args.size() > limits.arguments_max) return;
  std::string wire;
  ReplyWriter writer(&wire);
  writer.array(args.size());
  for (const std::string& arg : args) {
    if (arg.size() > limits.bulk_bytes_max) return;
    writer.bulk(arg);
  }
  RequestParser parser(limits);
  std::vector<std::string> parsed;
  const ParseOutcome outcome = parser.parse(wire, parsed);
  CAIRN_ASSERT(outcome.state == ParseState::kComplete, "fuzz invariant");
  CAIRN_ASSERT(outcome.consumed == wire.size(), "fuzz invariant");
  CAIRN_ASSERT(parsed == args, "fuzz invariant");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const ParserLimits limits = limits_for(data[0]);
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  const StreamResult whole = parse_stream(stream, limits, nullptr);
  Chunker chunker(data[1] | (static_cast<uint32_t>(data[0]) << 8));
  const StreamResult chunked = parse_stream(stream, limits, &chunker);
  CAIRN_ASSERT(whole == chunked, "fuzz invariant");

  for (const auto& request : whole.requests) check_round_trip(request, limits);

  // split_inline on arbitrary text must terminate without touching memory it does not own.
  std::vector<std::string> words;
  (void)cairn::resp::split_inline(stream, words);
  return 0;
}
