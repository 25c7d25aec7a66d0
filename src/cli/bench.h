#pragma once
// `cairn bench`: a load generator for a Cairn machine or cluster (or any Redis server).
//
//   cairn bench [--host 127.0.0.1] [--port 7000] [--duration 60s] [--connections 8]
//               [--pipeline 1] [--keys 100000] [--value-size 100] [--read-ratio 0.5]
//               [--distribution uniform|zipfian|hot-range|hot-key] [--consistency LEVEL]
//               [--json]
//
// Each connection (its own thread) sends batches of `pipeline` GETs and SETs of keys
// "bench:<i>" drawn from the distribution: uniform; zipfian (YCSB's, theta 0.99: a few keys take
// most operations); hot-range (90 % of operations on keys/100 keys "bench-hot:<i>" whose tokens
// all lie in one percent of the ring, so in one range of one shard, each with its own token so
// that a load-based split can divide them; 10 % uniform); hot-key (90 % on the one key
// "bench-hot-key", which no split can divide). Every second it prints a progress line (ops/s and
// latency percentiles of that second); at the end the throughput and p50/p99/p999 of the run,
// and with --json the same as one JSON object. Bounded: it stops at --duration (every socket
// operation has a timeout), whatever the server does.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace CLI {
class App;
}  // namespace CLI

namespace cairn::cli {

struct BenchOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7000;
  std::string duration = "60s";
  int connections = 8;
  int pipeline = 1;
  uint64_t keys = 100'000;
  size_t value_size = 100;
  double read_ratio = 0.5;
  std::string distribution = "uniform";
  std::string consistency;  // "" = the server's default; else CONSISTENCY READ x WRITE x
  // > 0: each operation is a transaction, MULTI + this many SETs of keys sharing the drawn
  // key's hash tag + EXEC (counted as one write); --read-ratio is ignored.
  int transaction = 0;
  bool json = false;
};

// "60s", "500ms", "2m", "90" (seconds) as milliseconds; nullopt if malformed or not positive.
std::optional<int64_t> parse_duration_ms(std::string_view text);

CLI::App* add_bench_command(CLI::App& app, BenchOptions& options);
// Returns the exit status: 0 when the run completed (errors are counted, not fatal), 1 when no
// connection could be made, 2 for bad options.
int run_bench(const BenchOptions& options, std::ostream& out, std::ostream& err);

}  // namespace cairn::cli
