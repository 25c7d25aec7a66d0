#include "cli/bench.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "metrics/histogram.h"
#include "resp/reply_parser.h"
#include "topology/token.h"

namespace cairn::cli {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kSocketTimeoutMs = 2000;  // one send or receive; bounds a stalled server
constexpr double kHotShare = 0.9;       // hot-range/hot-key: share of operations on the hot keys
// hot-range: the hot keys' tokens lie in [kHotBandStart, kHotBandStart + 2^64 / kHotBandParts):
// one percent of the ring, so one range of one shard, yet every key has a token of its own and
// a load-based split can divide them (keys sharing a hash tag would share one token).
constexpr topology::Token kHotBandStart = topology::Token{1} << 62;
constexpr topology::Token kHotBandParts = 100;
// Names tried per hot key needed: about kHotBandParts are, on average.
constexpr uint64_t kHotBandTriesPerKey = 100 * kHotBandParts;
constexpr double kZipfTheta = 0.99;     // YCSB's default skew

std::string resp_command(const std::vector<std::string_view>& args) {
  std::string out = fmt::format("*{}\r\n", args.size());
  for (std::string_view arg : args) out += fmt::format("${}\r\n{}\r\n", arg.size(), arg);
  return out;
}

// A blocking connection with timeouts on every call.
class Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool open(const std::string& host, uint16_t port, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
        rc != 0) {
      error = fmt::format("cannot resolve {}: {}", host, gai_strerror(rc));
      return false;
    }
    for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      timeval timeout{kSocketTimeoutMs / 1000, (kSocketTimeoutMs % 1000) * 1000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
      } else {
        error = fmt::format("cannot connect to {}:{}: {}", host, port, std::strerror(errno));
        ::close(fd);
      }
    }
    ::freeaddrinfo(found);
    return fd_ >= 0;
  }
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads `count` replies; counts the error replies. False if the connection failed.
  bool read_replies(size_t count, uint64_t& errors) {
    resp::Value value;
    while (count > 0) {
      if (position_ < buffer_.size()) {
        const resp::ParseOutcome outcome =
            parser_.parse(std::string_view(buffer_).substr(position_), value);
        position_ += outcome.consumed;
        if (outcome.state == resp::ParseState::kError) return false;
        if (outcome.state == resp::ParseState::kComplete) {
          if (value.is_error()) ++errors;
          --count;
          continue;
        }
      }
      buffer_.erase(0, position_);
      position_ = 0;
      char chunk[65536];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    return true;
  }

 private:
  int fd_ = -1;
  resp::ReplyParser parser_;
  std::string buffer_;
  size_t position_ = 0;
};

// YCSB's zipfian generator over [0, n): item 0 is the most frequent.
class Zipfian {
 public:
  explicit Zipfian(uint64_t n) : n_(n) {
    for (uint64_t i = 1; i <= n_; ++i) zeta_n_ += 1.0 / std::pow(static_cast<double>(i), kZipfTheta);
    const double zeta2 = 1.0 + 1.0 / std::pow(2.0, kZipfTheta);
    alpha_ = 1.0 / (1.0 - kZipfTheta);
    eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n_), 1.0 - kZipfTheta)) /
           (1.0 - zeta2 / zeta_n_);
  }
  uint64_t next(std::mt19937_64& random) const {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    const double uz = u * zeta_n_;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + std::pow(0.5, kZipfTheta)) return std::min<uint64_t>(1, n_ - 1);
    const auto item = static_cast<uint64_t>(static_cast<double>(n_) *
                                            std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return std::min(item, n_ - 1);
  }

 private:
  uint64_t n_;
  double zeta_n_ = 0;
  double alpha_ = 0;
  double eta_ = 0;
};

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> failed_connections{0};
  metrics::LogHistogram latency_us;  // per command: the round trip of its batch
};

// What the distributions draw from, built once before the connections start.
struct KeySource {
  std::unique_ptr<Zipfian> zipf;       // zipfian
  std::vector<std::string> hot_keys;  // hot-range, hot-key
};

// hot-range's keys: "bench-hot:<i>" for the first i whose token falls in the band.
std::vector<std::string> hot_band_keys(uint64_t count) {
  std::vector<std::string> out;
  const topology::Token width = std::numeric_limits<topology::Token>::max() / kHotBandParts;
  for (uint64_t i = 0; out.size() < count && i < count * kHotBandTriesPerKey; ++i) {
    std::string key = fmt::format("bench-hot:{}", i);
    const topology::Token token = topology::token_of(key);
    if (token >= kHotBandStart && token - kHotBandStart < width) out.push_back(std::move(key));
  }
  return out;
}

KeySource key_source(const BenchOptions& options) {
  KeySource source;
  if (options.distribution == "zipfian") source.zipf = std::make_unique<Zipfian>(options.keys);
  if (options.distribution == "hot-range") {
    source.hot_keys = hot_band_keys(std::max<uint64_t>(1, options.keys / 100));
  }
  if (options.distribution == "hot-key") source.hot_keys = {"bench-hot-key"};
  return source;
}

std::string key_for(const BenchOptions& options, const KeySource& source,
                    std::mt19937_64& random) {
  if (source.zipf) {
    // Scattered so that the popular items are not neighbours on the ring.
    const uint64_t rank = source.zipf->next(random);
    return fmt::format("bench:{}", (rank * 0x9E3779B97F4A7C15ull) % options.keys);
  }
  if (!source.hot_keys.empty()) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    if (u < kHotShare) return source.hot_keys[random() % source.hot_keys.size()];
  }
  return fmt::format("bench:{}", random() % options.keys);
}

void run_connection(const BenchOptions& options, const KeySource& keys, Shared& shared,
                    Clock::time_point deadline, uint64_t seed) {
  Connection connection;
  std::string error;
  if (!connection.open(options.host, options.port, error)) {
    shared.failed_connections.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  uint64_t errors = 0;
  if (!options.consistency.empty()) {
    if (!connection.send_all(resp_command({"CONSISTENCY", "READ", options.consistency, "WRITE",
                                           options.consistency})) ||
        !connection.read_replies(1, errors)) {
      shared.failed_connections.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    shared.errors.fetch_add(errors, std::memory_order_relaxed);
  }
  std::mt19937_64 random(seed);
  const std::string value(options.value_size, 'v');
  std::string batch;
  while (!shared.stop.load(std::memory_order_relaxed) && Clock::now() < deadline) {
    batch.clear();
    uint64_t reads = 0;
    size_t replies = 0;
    for (int i = 0; i < options.pipeline; ++i) {
      const std::string key = key_for(options, keys, random);
      if (options.transaction > 0) {
        batch += resp_command({"MULTI"});
        for (int j = 0; j < options.transaction; ++j) {
          batch += resp_command({"SET", fmt::format("{{{}}}:{}", key, j), value});
        }
        batch += resp_command({"EXEC"});
        replies += static_cast<size_t>(options.transaction) + 2;
        continue;
      }
      ++replies;
      if (std::uniform_real_distribution<double>(0.0, 1.0)(random) < options.read_ratio) {
        batch += resp_command({"GET", key});
        ++reads;
      } else {
        batch += resp_command({"SET", key, value});
      }
    }
    const auto started = Clock::now();
    errors = 0;
    if (!connection.send_all(batch) || !connection.read_replies(replies, errors)) {
      shared.failed_connections.fetch_add(1, std::memory_order_relaxed);
      return;  // a timed-out or closed connection: the others go on
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started)
                        .count();
    for (int i = 0; i < options.pipeline; ++i) {
      shared.latency_us.record(static_cast<uint64_t>(std::max<int64_t>(1, us)));
    }
    shared.reads.fetch_add(reads, std::memory_order_relaxed);
    shared.writes.fetch_add(static_cast<uint64_t>(options.pipeline) - reads,
                            std::memory_order_relaxed);
    shared.errors.fetch_add(errors, std::memory_order_relaxed);
  }
}

std::string ms_text(uint64_t us) { return fmt::format("{:.3f}", static_cast<double>(us) / 1000.0); }

}  // namespace

std::optional<int64_t> parse_duration_ms(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  const int64_t number = std::stoll(std::string(text.substr(0, digits)));
  const std::string_view unit = text.substr(digits);
  int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  if (unit == "ms") scale = 1;
  if (unit == "m") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (scale == 0 || number <= 0) return std::nullopt;
  return number * scale;
}

CLI::App* add_bench_command(CLI::App& app, BenchOptions& options) {
  CLI::App* bench = app.add_subcommand(
      "bench", "load-test a machine or cluster: GET/SET for a bounded time, then throughput "
               "and latency percentiles");
  bench->add_option("--host", options.host, "server address  [default: 127.0.0.1]");
  bench->add_option("--port", options.port, "server port  [default: 7000]");
  bench->add_option("--duration", options.duration, "how long: 60s, 500ms, 2m  [default: 60s]");
  bench->add_option("--connections", options.connections, "connections, one thread each  [default: 8]")
      ->check(CLI::Range(1, 1024));
  bench->add_option("--pipeline", options.pipeline, "commands per round trip  [default: 1]")
      ->check(CLI::Range(1, 10'000));
  bench->add_option("--keys", options.keys, "distinct keys  [default: 100000]")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000'000}));
  bench->add_option("--value-size", options.value_size, "bytes per SET value  [default: 100]")
      ->check(CLI::Range(size_t{0}, size_t{64} * 1024 * 1024));
  bench->add_option("--read-ratio", options.read_ratio, "share of GETs, 0 to 1  [default: 0.5]")
      ->check(CLI::Range(0.0, 1.0));
  bench->add_option("--transaction", options.transaction,
                    "each operation is MULTI, this many SETs of keys sharing a hash tag, EXEC "
                    "(0: plain GET/SET)  [default: 0]")
      ->check(CLI::Range(0, 1000));
  bench->add_option("--distribution", options.distribution,
                    "uniform, zipfian, hot-range or hot-key  [default: uniform]")
      ->check(CLI::IsMember({"uniform", "zipfian", "hot-range", "hot-key"}));
  bench->add_option("--consistency", options.consistency,
                    "ONE, QUORUM or ALL for reads and writes (a Cairn cluster)  [default: the "
                    "server's]");
  bench->add_flag("--json", options.json, "print the result as one JSON object at the end");
  return bench;
}

int run_bench(const BenchOptions& options, std::ostream& out, std::ostream& err) {
  const std::optional<int64_t> duration_ms = parse_duration_ms(options.duration);
  if (!duration_ms) {
    err << "cairn bench: --duration \"" << options.duration << "\" is not a duration (60s, 500ms)\n";
    return 2;
  }
  const KeySource keys = key_source(options);
  if ((options.distribution == "hot-range" || options.distribution == "hot-key") &&
      keys.hot_keys.empty()) {
    err << "cairn bench: no hot keys found in the hot band\n";  // a bug: the bound is ample
    return 1;
  }
  Shared shared;
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::milliseconds(*duration_ms);
  std::vector<std::thread> threads;
  std::random_device seed;
  for (int i = 0; i < options.connections; ++i) {
    threads.emplace_back(run_connection, std::cref(options), std::cref(keys), std::ref(shared),
                         deadline, (static_cast<uint64_t>(seed()) << 32) ^ seed());
  }
  // A progress line a second, from the counters of that second.
  metrics::HistogramSnapshot previous = shared.latency_us.snapshot();
  uint64_t previous_ops = 0;
  auto tick = started;
  for (int second = 1;; ++second) {
    tick += std::chrono::seconds(1);
    const auto wake = std::min(tick, deadline);
    while (Clock::now() < wake) {
      if (shared.failed_connections.load() == static_cast<uint64_t>(options.connections)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (shared.failed_connections.load() == static_cast<uint64_t>(options.connections)) break;
    if (Clock::now() >= deadline) break;
    const metrics::HistogramSnapshot now = shared.latency_us.snapshot();
    const metrics::HistogramSnapshot window = now.minus(previous);
    const uint64_t ops = shared.reads.load() + shared.writes.load();
    (options.json ? err : out) << fmt::format(
        "[{:>3}s] {:>9} ops/s  p50 {} ms  p99 {} ms  p999 {} ms  errors {}\n", second,
        ops - previous_ops, ms_text(window.percentile(0.5)), ms_text(window.percentile(0.99)),
        ms_text(window.percentile(0.999)), shared.errors.load());
    previous = now;
    previous_ops = ops;
  }
  shared.stop = true;
  for (std::thread& thread : threads) thread.join();
  const double elapsed_s =
      std::chrono::duration<double>(Clock::now() - started).count();
  if (shared.reads.load() + shared.writes.load() == 0 &&
      shared.failed_connections.load() == static_cast<uint64_t>(options.connections)) {
    err << "cairn bench: no connection to " << options.host << ":" << options.port
        << " worked\n";
    return 1;
  }
  const metrics::HistogramSnapshot all = shared.latency_us.snapshot();
  const uint64_t ops = shared.reads.load() + shared.writes.load();
  const double throughput = static_cast<double>(ops) / elapsed_s;
  if (options.json) {
    nlohmann::json result = {
        {"host", options.host},         {"port", options.port},
        {"distribution", options.distribution},
        {"connections", options.connections}, {"pipeline", options.pipeline},
        {"keys", options.keys},         {"value_size", options.value_size},
        {"read_ratio", options.read_ratio},   {"consistency", options.consistency},
        {"duration_s", elapsed_s},      {"operations", ops},
        {"reads", shared.reads.load()}, {"writes", shared.writes.load()},
        {"errors", shared.errors.load()},
        {"failed_connections", shared.failed_connections.load()},
        {"ops_per_sec", throughput},    {"p50_ms", all.percentile(0.5) / 1000.0},
        {"p99_ms", all.percentile(0.99) / 1000.0},
        {"p999_ms", all.percentile(0.999) / 1000.0}};
    out << result.dump() << "\n";
    return 0;
  }
  out << fmt::format(
      "\n{} operations in {:.1f} s ({} reads, {} writes, {} errors, {} connections failed)\n"
      "throughput: {:.0f} ops/s\nlatency: p50 {} ms  p99 {} ms  p999 {} ms\n",
      ops, elapsed_s, shared.reads.load(), shared.writes.load(), shared.errors.load(),
      shared.failed_connections.load(), throughput, ms_text(all.percentile(0.5)),
      ms_text(all.percentile(0.99)), ms_text(all.percentile(0.999)));
  return 0;
}

}  // namespace cairn::cli
