// `cairn dev`: an orchestrator (or several on a local etcd) and a loopback cluster as child
// processes of this binary.
//
// Invariants:
// 1. Only the main thread runs; SIGINT, SIGTERM and SIGCHLD stay blocked in it from the first
//    spawn to the end and are consumed synchronously with sigtimedwait, so there are no signal
//    handlers and every child is reaped by waitpid in one place (reap_children).
// 2. Every child runs in its own process group: a terminal's Ctrl-C reaches only this process,
//    which then stops the children in a fixed order (orchestrators, machines, then etcd).
//    PR_SET_PDEATHSIG makes a child stop by itself if this process is killed with SIGKILL.
// 3. Every wait is bounded: network checks by a deadline per request, start-up by
//    ready_timeout_ms, shutdown by kStopGraceMs per phase before SIGKILL.

#include "cli/dev.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/status.h"

namespace cairn::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;
constexpr int kMachinesMax = 200;             // ports and processes on one host stay sane
constexpr int64_t kStopGraceMs = 10'000;      // SIGTERM, then SIGKILL after this long
constexpr int64_t kChildStartMs = 15'000;     // a child must accept connections within this
constexpr int64_t kRequestTimeoutMs = 1'000;  // one HTTP or RESP check
constexpr int kMetricsPortOffset = 1000;  // machine i serves /metrics on its port + this
constexpr int64_t kPollIntervalMs = 200;
constexpr size_t kResponseBytesMax = 4 << 20;  // a status or machines answer is far smaller
constexpr size_t kSecretBytes = 24;            // 192 random bits, hex encoded
constexpr int kLogTailLines = 20;
constexpr int kEtcdMembers = 3;  // a quorum survives one member's loss
constexpr int kOrchestratorsMax = 9;

struct Child {
  std::string name;  // "etcd<j>", "orchestrator" (or "orchestrator<i>") or "m<i>"
  std::vector<std::string> argv;
  std::string display_command;  // argv for people: the secret replaced by $(cat secret)
  fs::path log_path;
  pid_t pid = -1;
  bool running = false;
};

// ---- signals ----------------------------------------------------------------------------

sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  return set;
}

// The first executable `name` in $PATH; "" when there is none.
std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigdescr_np(WTERMSIG(status));
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), name ? name : "?");
  }
  return fmt::format("stopped (wait status {})", status);
}

class Supervisor {
 public:
  explicit Supervisor(const DevConfig& config) : config_(config) {}

  int run();

 private:
  // Setup.
  Status prepare_directories();
  Status lock_data_dir();
  Result<std::string> load_or_create_secret();
  void build_children(const std::string& secret, const std::string& self);

  // Processes.
  Status spawn(Child& child);
  void reap_children(bool quiet);
  // Waits up to timeout_ms for a signal; handles it. Returns false once a stop was requested.
  bool wait_signal(int64_t timeout_ms);
  void stop_all();
  void stop_group(const std::vector<Child*>& group);
  bool any_running(const std::vector<Child*>& group) const;
  const Child* first_exited_during_start() const;
  void report_start_failure(const Child& child, const std::string& why);

  // Start-up checks.
  bool wait_until_accepting(const Child& child, uint16_t port);
  Status wait_until_serving();
  void print_banner(const std::string& self);

  uint16_t machine_port(int i) const { return static_cast<uint16_t>(config_.port + i); }
  // Each machine serves /metrics on its client port + kMetricsPortOffset.
  uint16_t metrics_port(int i) const {
    return static_cast<uint16_t>(config_.port + i + kMetricsPortOffset);
  }
  int machine_count() const { return config_.shards * config_.rf + config_.spares; }
  uint16_t orchestrator_port(int i) const {
    return static_cast<uint16_t>(config_.orchestrator_port + i);
  }
  // Several orchestrators keep their state in a local etcd (docs/orchestrator-ha.md).
  bool uses_etcd() const { return config_.orchestrators > 1; }
  int etcd_count() const { return uses_etcd() ? kEtcdMembers : 0; }
  uint16_t etcd_client_port(int j) const {
    return static_cast<uint16_t>(config_.etcd_port + 2 * j);
  }
  uint16_t etcd_peer_port(int j) const {
    return static_cast<uint16_t>(config_.etcd_port + 2 * j + 1);
  }
  std::string orchestrator_list() const;
  // children_ holds the etcd members, then the orchestrators, then the machines.
  Child& etcd_child(int j) { return children_[static_cast<size_t>(j)]; }
  Child& orchestrator_child(int i) { return children_[static_cast<size_t>(etcd_count() + i)]; }
  Child& machine_child(int i) {
    return children_[static_cast<size_t>(etcd_count() + config_.orchestrators + i)];
  }

  const DevConfig& config_;
  fs::path data_dir_;
  int lock_fd_ = -1;
  std::vector<Child> children_;  // etcd members, orchestrators, machines (see etcd_child...)
  std::string etcd_binary_;      // found in PATH when uses_etcd()
  bool supervising_ = false;  // start-up is over: a child exit is news worth a warning
  bool stop_requested_ = false;
  int stop_signals_ = 0;
};

// ---- tiny blocking loopback clients (bounded by a deadline) -----------------------------

int64_t ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max<int64_t>(0, left.count());
}

class Socket {
 public:
  Socket() = default;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  Status connect(uint16_t port, Clock::time_point deadline) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return Status::io_error(fmt::format("socket: {}", std::strerror(errno)));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
      return Status::ok();
    }
    if (errno != EINPROGRESS) {
      return Status::io_error(fmt::format("connect to port {}: {}", port, std::strerror(errno)));
    }
    if (!wait_ready(POLLOUT, deadline)) {
      return Status::timed_out(fmt::format("connect to port {}: timed out", port));
    }
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      return Status::io_error(fmt::format("connect to port {}: {}", port, std::strerror(error)));
    }
    return Status::ok();
  }

  Status send_all(std::string_view bytes, Clock::time_point deadline) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n > 0) {
        bytes.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait_ready(POLLOUT, deadline)) return Status::timed_out("send timed out");
      } else {
        return Status::io_error(fmt::format("send: {}", std::strerror(errno)));
      }
    }
    return Status::ok();
  }

  // Appends what arrives to `buffer`; returns false at EOF. Errors and timeouts are Status.
  Result<bool> receive_some(std::string& buffer, Clock::time_point deadline) {
    char chunk[16 * 1024];
    while (true) {
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        if (buffer.size() + static_cast<size_t>(n) > kResponseBytesMax) {
          return Status::busy("response too large");
        }
        buffer.append(chunk, static_cast<size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno != EAGAIN && errno != EINTR) {
        return Status::io_error(fmt::format("recv: {}", std::strerror(errno)));
      }
      if (!wait_ready(POLLIN, deadline)) return Status::timed_out("no answer in time");
    }
  }

 private:
  bool wait_ready(short events, Clock::time_point deadline) {
    pollfd entry{fd_, events, 0};
    while (true) {
      int n = ::poll(&entry, 1, static_cast<int>(ms_left(deadline)));
      if (n > 0) return true;
      if (n == 0) return false;
      if (errno != EINTR) return false;
    }
  }

  int fd_ = -1;
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:port/path with Connection: close; the body ends at EOF or at
// Content-Length, whichever comes first.
Result<HttpResponse> http_get(uint16_t port, const std::string& path) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
  Socket socket;
  if (auto s = socket.connect(port, deadline); !s.is_ok()) return s;
  std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: application/json\r\n"
      "Connection: close\r\n\r\n",
      path, port);
  if (auto s = socket.send_all(request, deadline); !s.is_ok()) return s;
  std::string data;
  std::optional<size_t> body_start;
  std::optional<size_t> content_length;
  while (true) {
    auto more = socket.receive_some(data, deadline);
    if (!more.is_ok()) return more.status();
    if (!body_start) {
      size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        body_start = end + 4;
        std::string head = data.substr(0, end);
        for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t at = head.find("\r\ncontent-length:");
        if (at != std::string::npos) {
          content_length = std::strtoull(head.c_str() + at + 17, nullptr, 10);
        }
      }
    }
    if (body_start && content_length && data.size() >= *body_start + *content_length) break;
    if (!*more) break;
  }
  if (!body_start || data.compare(0, 5, "HTTP/") != 0) {
    return Status::io_error("malformed HTTP response");
  }
  HttpResponse response;
  size_t space = data.find(' ');
  response.status = space == std::string::npos ? 0 : std::atoi(data.c_str() + space + 1);
  response.body = data.substr(*body_start, content_length.value_or(std::string::npos));
  return response;
}

Result<nlohmann::json> get_json(uint16_t port, const std::string& path) {
  auto response = http_get(port, path);
  if (!response.is_ok()) return response.status();
  if (response->status != 200) {
    return Status::unavailable(fmt::format("GET {}: HTTP {}", path, response->status));
  }
  auto parsed = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Status::corruption(fmt::format("GET {}: not JSON", path));
  return parsed;
}

std::string resp_command(const std::vector<std::string>& arguments) {
  std::string out = fmt::format("*{}\r\n", arguments.size());
  for (const auto& argument : arguments) {
    out += fmt::format("${}\r\n{}\r\n", argument.size(), argument);
  }
  return out;
}

// Reads one simple-string, error or bulk-string reply (all a SET or GET answers).
Result<std::string> read_reply(Socket& socket, std::string& buffer, Clock::time_point deadline) {
  while (true) {
    size_t line_end = buffer.find("\r\n");
    if (line_end != std::string::npos) {
      std::string line = buffer.substr(0, line_end);
      if (line.empty()) return Status::corruption("empty reply line");
      if (line[0] == '-') return Status::unavailable(line.substr(1));
      if (line[0] == '+') {
        buffer.erase(0, line_end + 2);
        return line.substr(1);
      }
      if (line[0] == '$') {
        long long length = std::atoll(line.c_str() + 1);
        if (length < 0) {
          buffer.erase(0, line_end + 2);
          return Status::not_found("nil");
        }
        size_t need = line_end + 2 + static_cast<size_t>(length) + 2;
        if (buffer.size() >= need) {
          std::string value = buffer.substr(line_end + 2, static_cast<size_t>(length));
          buffer.erase(0, need);
          return value;
        }
      } else {
        return Status::corruption(fmt::format("unexpected reply: {}", line));
      }
    }
    auto more = socket.receive_some(buffer, deadline);
    if (!more.is_ok()) return more.status();
    if (!*more) return Status::io_error("connection closed");
  }
}

// A SET then a GET of the same key through one machine: the cluster path end to end.
// A read through the machine at `port`: GET of a key nobody writes answers nil once the machine
// has a routing table and reaches the key's replicas. Nothing is written to the user's
// keyspace (a fresh cluster has DBSIZE 0).
Status read_check(uint16_t port, const std::string& key) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kRequestTimeoutMs * 3);
  Socket socket;
  if (auto s = socket.connect(port, deadline); !s.is_ok()) return s;
  if (auto s = socket.send_all(resp_command({"GET", key}), deadline); !s.is_ok()) return s;
  std::string buffer;
  auto reply = read_reply(socket, buffer, deadline);
  if (reply.is_ok() || reply.status().code() == StatusCode::kNotFound) return Status::ok();
  return reply.status();
}

// ---- files ------------------------------------------------------------------------------

std::string random_hex(size_t bytes) {
  std::random_device device;  // /dev/urandom on Linux
  std::string out;
  out.reserve(bytes * 2);
  for (size_t i = 0; i < bytes; ++i) out += fmt::format("{:02x}", device() & 0xff);
  return out;
}

std::string trim(std::string text) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
  text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
  return text;
}

std::vector<std::string> tail_lines(const fs::path& path, int count) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > static_cast<size_t>(count)) lines.erase(lines.begin());
  }
  return lines;
}

std::string shell_quote(const std::string& word) {
  bool plain = !word.empty() && word.find_first_not_of(
                                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789-_./:=@,+") == std::string::npos;
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// ---- Supervisor -------------------------------------------------------------------------

Status Supervisor::prepare_directories() {
  std::error_code error;
  fs::create_directories(data_dir_ / "logs", error);
  if (!error) fs::create_directories(data_dir_ / "orchestrator", error);
  if (!error && uses_etcd()) fs::create_directories(data_dir_ / "etcd", error);
  for (int i = 0; !error && i < machine_count(); ++i) {
    fs::create_directories(data_dir_ / fmt::format("m{}", i), error);
  }
  if (error) {
    return Status::io_error(fmt::format("cannot create {}: {}", data_dir_.string(),
                                        error.message()));
  }
  return Status::ok();
}

Status Supervisor::lock_data_dir() {
  fs::path path = data_dir_ / "dev.lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return Status::io_error(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Status::busy(fmt::format("another `cairn dev` is running on {} (it holds {})",
                                    data_dir_.string(), path.string()));
  }
  return Status::ok();
}

Result<std::string> Supervisor::load_or_create_secret() {
  fs::path path = data_dir_ / "secret";
  if (fs::exists(path)) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::string secret = trim(text.str());
    if (secret.empty()) return Status::invalid_argument(path.string() + " is empty");
    return secret;
  }
  std::string secret = random_hex(kSecretBytes);
  // Written to a temporary file first so that an interrupted start never leaves a partial
  // secret that a later start would silently use.
  fs::path temporary = data_dir_ / "secret.tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error(fmt::format("cannot write {}", temporary.string()));
  std::string line = secret + "\n";
  bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                 ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
    return Status::io_error(fmt::format("cannot write {}", path.string()));
  }
  return secret;
}

void Supervisor::build_children(const std::string& secret, const std::string& self) {
  std::string secret_shell = fmt::format("$(cat {})", shell_quote((data_dir_ / "secret").string()));
  auto display = [&](const std::vector<std::string>& argv) {
    std::string out;
    for (size_t i = 0; i < argv.size(); ++i) {
      if (!out.empty()) out += ' ';
      bool is_secret = i > 0 && argv[i - 1] == "--cluster-secret";
      out += is_secret ? secret_shell : shell_quote(argv[i]);
    }
    return out;
  };

  // etcd first: the orchestrators keep their state in it (docs/orchestrator-ha.md). Its
  // heartbeat and election timeout are shortened so that it grants 1 s leases (takeover ~1 s).
  std::string initial_cluster;
  for (int j = 0; j < etcd_count(); ++j) {
    if (j > 0) initial_cluster += ",";
    initial_cluster += fmt::format("e{}=http://127.0.0.1:{}", j, etcd_peer_port(j));
  }
  std::string etcd_urls;
  for (int j = 0; j < etcd_count(); ++j) {
    if (j > 0) etcd_urls += ",";
    etcd_urls += fmt::format("http://127.0.0.1:{}", etcd_client_port(j));
    Child etcd;
    etcd.name = fmt::format("etcd{}", j);
    const std::string client_url = fmt::format("http://127.0.0.1:{}", etcd_client_port(j));
    const std::string peer_url = fmt::format("http://127.0.0.1:{}", etcd_peer_port(j));
    etcd.argv = {etcd_binary_,
                 "--name",
                 fmt::format("e{}", j),
                 "--data-dir",
                 (data_dir_ / "etcd" / fmt::format("e{}", j)).string(),
                 "--listen-client-urls",
                 client_url,
                 "--advertise-client-urls",
                 client_url,
                 "--listen-peer-urls",
                 peer_url,
                 "--initial-advertise-peer-urls",
                 peer_url,
                 "--initial-cluster",
                 initial_cluster,
                 "--initial-cluster-state",
                 "new",
                 "--initial-cluster-token",
                 "cairn-dev",
                 "--heartbeat-interval",
                 "50",
                 "--election-timeout",
                 "500",
                 "--auto-compaction-mode",
                 "revision",
                 "--auto-compaction-retention",
                 "1000",
                 "--logger",
                 "zap",
                 "--log-level",
                 "warn"};
    etcd.display_command = display(etcd.argv);
    etcd.log_path = data_dir_ / "logs" / (etcd.name + ".log");
    children_.push_back(std::move(etcd));
  }

  for (int i = 0; i < config_.orchestrators; ++i) {
    Child orchestrator;
    orchestrator.name = uses_etcd() ? fmt::format("orchestrator{}", i) : "orchestrator";
    orchestrator.argv = {self,
                         "orchestrator",
                         "--port",
                         std::to_string(orchestrator_port(i)),
                         "--bind",
                         "127.0.0.1",
                         "--cluster-secret",
                         secret,
                         "--rf",
                         std::to_string(config_.rf),
                         "--initial-shards",
                         std::to_string(config_.shards),
                         "--min-spares",
                         std::to_string(config_.spares)};
    if (uses_etcd()) {
      for (const char* word : {"--etcd", etcd_urls.c_str(), "--etcd-prefix", "/cairn/dev"}) {
        orchestrator.argv.push_back(word);
      }
    } else {
      orchestrator.argv.push_back("--data-dir");
      orchestrator.argv.push_back((data_dir_ / "orchestrator").string());
    }
    auto pass = [&](const char* flag, int64_t value) {
      if (value > 0) {
        orchestrator.argv.push_back(flag);
        orchestrator.argv.push_back(std::to_string(value));
      }
    };
    pass("--down-after-ms", config_.down_after_ms);
    pass("--dead-after-ms", config_.dead_after_ms);
    pass("--lease-ms", config_.lease_ms);
    pass("--migration-max-rate", config_.migration_max_rate);
    if (config_.no_auto_rebalance) orchestrator.argv.push_back("--no-auto-rebalance");
    for (const std::string& arg : config_.orchestrator_args) orchestrator.argv.push_back(arg);
    orchestrator.display_command = display(orchestrator.argv);
    orchestrator.log_path = data_dir_ / "logs" / (orchestrator.name + ".log");
    children_.push_back(std::move(orchestrator));
  }

  for (int i = 0; i < machine_count(); ++i) {
    Child machine;
    machine.name = fmt::format("m{}", i);
    machine.argv = {self,
                    "server",
                    "--cluster-secret",
                    secret,
                    "--orchestrator",
                    orchestrator_list(),
                    "--port",
                    std::to_string(machine_port(i)),
                    "--metrics-port",
                    std::to_string(metrics_port(i)),
                    "--data-dir",
                    (data_dir_ / machine.name).string(),
                    "--bind",
                    "127.0.0.1",
                    "--log-level",
                    config_.log_level};
    machine.display_command = display(machine.argv);
    machine.log_path = data_dir_ / "logs" / (machine.name + ".log");
    children_.push_back(std::move(machine));
  }
}

std::string Supervisor::orchestrator_list() const {
  std::string list;
  for (int i = 0; i < config_.orchestrators; ++i) {
    if (i > 0) list += ",";
    list += fmt::format("127.0.0.1:{}", orchestrator_port(i));
  }
  return list;
}

Status Supervisor::spawn(Child& child) {
  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are made.
  int log_fd = ::open(child.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return Status::io_error(fmt::format("cannot open {}: {}", child.log_path.string(),
                                        std::strerror(errno)));
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<char*> argv;
  for (auto& argument : child.argv) argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  sigset_t empty;
  sigemptyset(&empty);

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return Status::io_error(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);  // the mask survives exec: undo ours
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  child.pid = pid;
  child.running = true;
  spdlog::info("started {} (pid {}), log {}", child.name, pid, child.log_path.string());
  return Status::ok();
}

void Supervisor::reap_children(bool quiet) {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (auto& child : children_) {
      if (child.pid != pid || !child.running) continue;
      child.running = false;
      if (quiet) {
        spdlog::info("{} (pid {}) {}", child.name, pid, describe_wait_status(status));
      } else if (child.name.starts_with("orchestrator")) {
        spdlog::warn(
            "{} (pid {}) {}; machines keep serving with their last routing table{}. "
            "Restart it with: {}",
            child.name, pid, describe_wait_status(status),
            uses_etcd() ? " and another orchestrator takes over" : "", child.display_command);
      } else if (child.name.starts_with("etcd")) {
        spdlog::warn(
            "{} (pid {}) {}; the orchestrators continue while a quorum of etcd members "
            "runs. Restart it with: {}",
            child.name, pid, describe_wait_status(status), child.display_command);
      } else {
        spdlog::warn(
            "{} (pid {}) {}; the orchestrator marks it down, then dead and replaces it. "
            "Restart it with: {}",
            child.name, pid, describe_wait_status(status), child.display_command);
      }
    }
  }
}

bool Supervisor::wait_signal(int64_t timeout_ms) {
  sigset_t set = handled_signals();
  timespec timeout{static_cast<time_t>(timeout_ms / 1000),
                   static_cast<long>((timeout_ms % 1000) * 1'000'000)};
  // Drain every pending signal, waiting only for the first.
  while (true) {
    int signal_number = ::sigtimedwait(&set, nullptr, &timeout);
    if (signal_number < 0) break;  // EAGAIN (timeout) or EINTR
    if (signal_number == SIGCHLD) {
      // Exits during start-up or shutdown are expected or reported by their caller.
      reap_children(stop_requested_ || !supervising_);
    } else {
      ++stop_signals_;
      if (!stop_requested_) {
        spdlog::info("received {}, stopping the dev cluster", sigabbrev_np(signal_number));
      }
      stop_requested_ = true;
    }
    timeout = {0, 0};
  }
  return !stop_requested_;
}

bool Supervisor::any_running(const std::vector<Child*>& group) const {
  for (const Child* child : group) {
    if (child->running) return true;
  }
  return false;
}

void Supervisor::stop_group(const std::vector<Child*>& group) {
  for (Child* child : group) {
    if (child->running) ::kill(child->pid, SIGTERM);
  }
  int signals_before = stop_signals_;
  auto deadline = Clock::now() + std::chrono::milliseconds(kStopGraceMs);
  while (any_running(group) && Clock::now() < deadline) {
    wait_signal(std::min<int64_t>(kPollIntervalMs, std::max<int64_t>(1, ms_left(deadline))));
    if (stop_signals_ > signals_before) break;  // a second Ctrl-C: do not wait any longer
  }
  for (Child* child : group) {
    if (!child->running) continue;
    spdlog::warn("{} (pid {}) did not stop in time: SIGKILL", child->name, child->pid);
    ::kill(child->pid, SIGKILL);
  }
  // SIGKILL cannot be ignored; the wait for the kernel to deliver it is short but bounded.
  auto kill_deadline = Clock::now() + std::chrono::milliseconds(kStopGraceMs);
  while (any_running(group) && Clock::now() < kill_deadline) wait_signal(kPollIntervalMs);
}

void Supervisor::stop_all() {
  stop_requested_ = true;
  // The orchestrator first: stopping machines under a running orchestrator would have it record
  // them down (and maybe dead, then replaced) in its saved state.
  // etcd last: a stopping leader revokes its lease in it.
  std::vector<Child*> orchestrators;
  for (int i = 0; i < config_.orchestrators; ++i) orchestrators.push_back(&orchestrator_child(i));
  stop_group(orchestrators);
  std::vector<Child*> machines;
  for (int i = 0; i < machine_count(); ++i) machines.push_back(&machine_child(i));
  stop_group(machines);
  std::vector<Child*> etcd;
  for (int j = 0; j < etcd_count(); ++j) etcd.push_back(&etcd_child(j));
  stop_group(etcd);
}

const Child* Supervisor::first_exited_during_start() const {
  for (const auto& child : children_) {
    if (child.pid > 0 && !child.running) return &child;
  }
  return nullptr;
}

void Supervisor::report_start_failure(const Child& child, const std::string& why) {
  std::cerr << "cairn dev: " << child.name << " " << why << ". Last lines of "
            << child.log_path.string() << ":\n";
  for (const auto& line : tail_lines(child.log_path, kLogTailLines)) {
    std::cerr << "  " << line << "\n";
  }
  std::cerr.flush();
}

bool Supervisor::wait_until_accepting(const Child& child, uint16_t port) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kChildStartMs);
  while (Clock::now() < deadline) {
    if (!child.running) {
      report_start_failure(child, "exited during start-up");
      return false;
    }
    Socket socket;
    auto attempt = Clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
    if (socket.connect(port, attempt).is_ok()) return true;
    if (!wait_signal(50)) return false;
  }
  report_start_failure(child, fmt::format("does not accept connections on port {} after {} ms",
                                          port, kChildStartMs));
  return false;
}

Status Supervisor::wait_until_serving() {
  auto deadline = Clock::now() + std::chrono::milliseconds(config_.ready_timeout_ms);
  std::string last_error = "no answer yet";
  bool bootstrapped = false;
  // Read only: the key is never written (readiness must not leave data behind).
  const std::string key = "cairn-dev:ready";
  int next_reader = 0;
  while (Clock::now() < deadline) {
    if (const Child* exited = first_exited_during_start()) {
      report_start_failure(*exited, "exited during start-up");
      return Status::unavailable(exited->name + " exited during start-up");
    }
    if (!bootstrapped) {
      auto status = get_json(config_.orchestrator_port, "/v1/status");
      if (!status.is_ok()) {
        last_error = "orchestrator: " + status.status().message();
      } else if (!status->value("bootstrapped", false)) {
        last_error = "the orchestrator has not formed the shards yet";
      } else {
        bootstrapped = true;
        spdlog::info("the orchestrator formed the shards (epoch {})",
                     status->value("epoch", nlohmann::json(0)).dump());
      }
    }
    // Every machine serves once it has installed a routing table (it learns of the table with
    // its next heartbeat): until then it answers NOTABLE, so the banner would be premature.
    while (bootstrapped && next_reader < machine_count()) {
      Status check = read_check(machine_port(next_reader), key);
      if (!check.is_ok()) {
        last_error = fmt::format("GET through m{}: {}", next_reader, check.message());
        break;
      }
      ++next_reader;
    }
    if (bootstrapped && next_reader == machine_count()) return Status::ok();
    if (!wait_signal(kPollIntervalMs)) return Status::unavailable("stopped");
  }
  return Status::timed_out(last_error);
}

// The text of a JSON field whatever its type; "" when missing or null.
std::string field_text(const nlohmann::json& object, const char* name) {
  if (!object.is_object() || !object.contains(name) || object[name].is_null()) return "";
  const auto& value = object[name];
  return value.is_string() ? value.get<std::string>() : value.dump();
}

void Supervisor::print_banner(const std::string& self) {
  nlohmann::json machines = nlohmann::json::array();
  if (auto listed = get_json(config_.orchestrator_port, "/v1/machines");
      listed.is_ok() && listed->is_array()) {
    machines = *listed;
  }
  std::ostringstream out;
  out << "\nCairn dev cluster is ready: " << config_.shards << " shard(s) x RF " << config_.rf
      << ", " << config_.spares << " spare(s); data in " << data_dir_.string() << "\n\n";
  out << "  Connect:        redis-cli -p " << config_.port << "    (any machine serves any key)\n";
  out << "  Dashboard:      http://127.0.0.1:" << config_.orchestrator_port
      << "/    (JSON API under /v1/: status, machines, shards, ring, events, load)\n";
  out << "  Metrics:        http://127.0.0.1:" << metrics_port(0) << "/metrics ... :"
      << metrics_port(machine_count() - 1) << " (machine i: client port + " << kMetricsPortOffset
      << "), http://127.0.0.1:" << config_.orchestrator_port << "/metrics (orchestrator)\n";
  for (int i = 0; i < config_.orchestrators; ++i) {
    out << "  API:            http://127.0.0.1:" << orchestrator_port(i) << "/v1/status"
        << "    (" << orchestrator_child(i).name << " pid " << orchestrator_child(i).pid << ")\n";
  }
  for (int j = 0; j < etcd_count(); ++j) {
    out << "  etcd:           http://127.0.0.1:" << etcd_client_port(j) << "    ("
        << etcd_child(j).name << " pid " << etcd_child(j).pid << ", prefix /cairn/dev)\n";
  }
  out << "  Admin:          " << self << " admin --orchestrator " << orchestrator_list()
      << " status\n";
  out << "  Machines:\n";
  for (int i = 0; i < machine_count(); ++i) {
    const Child& child = machine_child(i);
    std::string address = fmt::format("127.0.0.1:{}", machine_port(i));
    std::string role;
    for (const auto& machine : machines) {
      if (field_text(machine, "address") != address) continue;
      std::string shard = field_text(machine, "shard");
      role = field_text(machine, "state");
      if (!shard.empty() && shard != "0") {
        role += fmt::format(", shard {} {}", shard, field_text(machine, "role"));
      }
    }
    out << fmt::format("    {:<4} {:<16} pid {:<8} {}\n", child.name, address, child.pid, role);
  }
  int next = machine_count();
  out << "  Add a machine:  " << self << " server --cluster-secret $(cat "
      << shell_quote((data_dir_ / "secret").string()) << ") --orchestrator "
      << orchestrator_list() << " --port " << machine_port(next) << " --data-dir "
      << shell_quote((data_dir_ / fmt::format("m{}", next)).string()) << "\n";
  out << "  Logs:           " << (data_dir_ / "logs").string() << "/\n\n";
  out << "Ctrl-C stops everything; the data stays in " << data_dir_.string()
      << " for the next start.\n";
  std::cout << out.str() << std::flush;
}

int Supervisor::run() {
  data_dir_ = fs::absolute(config_.data_dir).lexically_normal();
  if (auto s = prepare_directories(); !s.is_ok()) {
    std::cerr << "cairn dev: " << s.message() << "\n";
    return kExitFailure;
  }
  if (auto s = lock_data_dir(); !s.is_ok()) {
    std::cerr << "cairn dev: " << s.message() << "\n";
    return kExitFailure;
  }
  auto secret = load_or_create_secret();
  if (!secret.is_ok()) {
    std::cerr << "cairn dev: " << secret.status().message() << "\n";
    return kExitFailure;
  }
  std::error_code error;
  std::string self = fs::read_symlink("/proc/self/exe", error).string();
  if (error) {
    std::cerr << "cairn dev: cannot find this binary (/proc/self/exe): " << error.message()
              << "\n";
    return kExitFailure;
  }
  if (uses_etcd()) {
    etcd_binary_ = find_in_path("etcd");
    if (etcd_binary_.empty()) {
      std::cerr << "cairn dev: --orchestrators " << config_.orchestrators
                << " needs etcd (Debian's etcd-server; scripts/install-deps installs it)\n";
      return kExitFailure;
    }
  }
  build_children(*secret, self);

  sigset_t set = handled_signals();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);

  bool started = true;
  // etcd members start together (each waits for the others to form a quorum).
  for (int j = 0; started && j < etcd_count(); ++j) {
    if (auto s = spawn(etcd_child(j)); !s.is_ok()) {
      std::cerr << "cairn dev: cannot start " << etcd_child(j).name << ": " << s.message() << "\n";
      started = false;
    }
  }
  for (int j = 0; started && j < etcd_count(); ++j) {
    started = wait_until_accepting(etcd_child(j), etcd_client_port(j));
  }
  for (int i = 0; started && i < config_.orchestrators; ++i) {
    if (auto s = spawn(orchestrator_child(i)); !s.is_ok()) {
      std::cerr << "cairn dev: cannot start " << orchestrator_child(i).name << ": " << s.message()
                << "\n";
      started = false;
      break;
    }
    started = wait_until_accepting(orchestrator_child(i), orchestrator_port(i));
  }
  for (int i = 0; started && i < machine_count(); ++i) {
    Child& machine = machine_child(i);
    if (auto s = spawn(machine); !s.is_ok()) {
      std::cerr << "cairn dev: cannot start " << machine.name << ": " << s.message() << "\n";
      started = false;
      break;
    }
    // One at a time, so that machines register in index order and the first shards × rf of
    // them form the initial shards (the rest are spares), which makes the layout predictable.
    started = wait_until_accepting(machine, machine_port(i));
  }
  if (started) {
    Status serving = wait_until_serving();
    if (serving.is_ok()) {
      print_banner(self);
    } else if (!stop_requested_ && first_exited_during_start() == nullptr) {
      // Keep running: the processes are up and the logs say why the cluster is not serving.
      spdlog::warn("the cluster does not serve after {} ms ({}); still running, see {}/logs",
                   config_.ready_timeout_ms, serving.message(), data_dir_.string());
    } else {
      started = stop_requested_;  // a Ctrl-C during start-up is a clean stop
    }
  } else {
    started = stop_requested_;
  }

  supervising_ = started;
  while (started && wait_signal(1000)) {
  }
  stop_all();
  spdlog::info("dev cluster stopped");
  return started ? 0 : kExitFailure;
}

}  // namespace

void add_dev_flags(CLI::App& app, DevConfig& config) {
  app.add_option("--shards", config.shards, "shards formed at the first start")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--rf", config.rf, "replication factor")
      ->check(CLI::Range(1, 9))
      ->capture_default_str();
  app.add_option("--spares", config.spares, "idle spare machines (the orchestrator's minimum)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--port", config.port, "client port of machine 0; machine i uses port + i")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--orchestrator-port", config.orchestrator_port,
                 "the orchestrator's HTTP API and dashboard port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--orchestrators", config.orchestrators,
                 "orchestrators; more than 1 keep their state in a local 3-member etcd "
                 "(orchestrator i on --orchestrator-port + i, docs/orchestrator-ha.md)")
      ->check(CLI::Range(1, kOrchestratorsMax))
      ->capture_default_str();
  app.add_option("--etcd-port", config.etcd_port,
                 "with --orchestrators > 1: etcd member j serves clients on this port + 2j "
                 "(peers on + 2j + 1)")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--data-dir", config.data_dir, "all data, logs and the cluster secret")
      ->capture_default_str();
  app.add_option("--down-after-ms", config.down_after_ms,
                 "orchestrator: silence before a machine is down (0 = its default)")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600'000}));
  app.add_option("--dead-after-ms", config.dead_after_ms,
                 "orchestrator: silence before a machine is dead and replaced (0 = its default)")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600'000}));
  app.add_option("--lease-ms", config.lease_ms, "orchestrator: leader lease (0 = its default)")
      ->check(CLI::Range(int64_t{0}, int64_t{600'000}));
  app.add_option("--migration-max-rate", config.migration_max_rate,
                 "orchestrator: migration copy rate per target machine, bytes/s (0 = its "
                 "default)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app.add_flag("--no-auto-rebalance", config.no_auto_rebalance,
               "orchestrator: new shards wait for `cairn admin move` instead of taking ranges");
  app.add_option("--orchestrator-arg", config.orchestrator_args,
                 "orchestrator: one more flag, passed as is (repeat it; e.g. "
                 "--orchestrator-arg=--hot-shard-ops=500)")
      ->allow_extra_args(false)
      ->check([](const std::string& arg) {
        return arg.starts_with("--") ? std::string() : "must be a flag starting with --";
      });
  app.add_option("--log-level", config.log_level, "log level of this process and the machines")
      ->capture_default_str();
  app.add_option("--ready-timeout-ms", config.ready_timeout_ms,
                 "how long to wait for the cluster to serve before warning")
      ->check(CLI::Range(int64_t{1'000}, int64_t{600'000}))
      ->capture_default_str();
}

int run_dev(const DevConfig& config) {
  int machines = config.shards * config.rf + config.spares;
  if (machines > kMachinesMax) {
    std::cerr << "cairn dev: " << machines << " machines is more than " << kMachinesMax << "\n";
    return kExitUsage;
  }
  // One more port than the machines: the banner suggests it for the next machine to add.
  int last_port = config.port + machines;
  if (last_port > 65535) {
    std::cerr << "cairn dev: ports " << config.port << ".." << last_port << " do not fit\n";
    return kExitUsage;
  }
  const int last_orchestrator_port = config.orchestrator_port + config.orchestrators - 1;
  if (last_orchestrator_port >= config.port && config.orchestrator_port <= last_port) {
    std::cerr << "cairn dev: --orchestrator-port " << config.orchestrator_port
              << " collides with the machines' ports " << config.port << ".." << last_port
              << "\n";
    return kExitUsage;
  }
  if (config.orchestrators > 1) {
    const int etcd_last = config.etcd_port + 2 * kEtcdMembers - 1;
    const bool hits_machines = etcd_last >= config.port && config.etcd_port <= last_port;
    const bool hits_orchestrators =
        etcd_last >= config.orchestrator_port && config.etcd_port <= last_orchestrator_port;
    if (etcd_last > 65535 || hits_machines || hits_orchestrators) {
      std::cerr << "cairn dev: --etcd-port " << config.etcd_port << ".." << etcd_last
                << " collides with other ports or does not fit\n";
      return kExitUsage;
    }
  }
  if (config.down_after_ms > 0 && config.dead_after_ms > 0 &&
      config.dead_after_ms <= config.down_after_ms) {
    std::cerr << "cairn dev: --dead-after-ms must be longer than --down-after-ms\n";
    return kExitUsage;
  }
  Supervisor supervisor(config);
  return supervisor.run();
}

}  // namespace cairn::cli
