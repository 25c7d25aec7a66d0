// The machine side of the orchestrator against a fake orchestrator: a tiny HTTP server in this
// test answering the agreed API (register, heartbeat, table) with whatever each test scripts.

#include "server/orchestrator_agent.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "net/asio.h"
#include "server/http_client.h"
#include "server/orchestrator_client.h"
#include "server/raw_client_test.h"
#include "server/server.h"
#include "topology/routing_table.h"

namespace cairn::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;
using test_support::command;
using test_support::RawClient;

constexpr std::string_view kSecret = "agent-secret";

struct FakeRequest {
  std::string method;
  std::string target;
  std::string body;
  std::string authorization;
};

struct FakeAnswer {
  int status = 200;
  std::string body;
};

// One connection at a time, one request per connection (the agent's client closes after each).
class FakeOrchestrator {
 public:
  using Handler = std::function<FakeAnswer(const FakeRequest&)>;

  explicit FakeOrchestrator(Handler handler)
      : handler_(std::move(handler)),
        acceptor_(io_, net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeOrchestrator() {
    stopping_ = true;
    // Wakes the blocking accept().
    net::asio::io_context io;
    net::tcp::socket waker(io);
    net::error_code ignored;
    waker.connect(net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), port_), ignored);
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<FakeRequest> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t count(std::string_view target) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& request : requests_) n += request.target == target ? 1 : 0;
    return n;
  }

 private:
  void serve() {
    while (!stopping_) {
      net::tcp::socket socket(io_);
      net::error_code error;
      acceptor_.accept(socket, error);
      if (error || stopping_) continue;
      beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(socket, buffer, request, error);
      if (error) continue;
      FakeRequest seen{std::string(request.method_string()), std::string(request.target()),
                       request.body(), std::string(request[http::field::authorization])};
      {
        std::lock_guard lock(mu_);
        requests_.push_back(seen);
      }
      const FakeAnswer answer = handler_(seen);
      http::response<http::string_body> response{static_cast<http::status>(answer.status), 11};
      response.set(http::field::content_type, "application/json");
      response.body() = answer.body;
      response.prepare_payload();
      http::write(socket, response, error);
      socket.shutdown(net::tcp::socket::shutdown_both, error);
    }
  }

  Handler handler_;
  net::asio::io_context io_;
  net::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<FakeRequest> requests_;
  std::thread thread_;
};

bool eventually(const std::function<bool()>& condition, int timeout_ms = 5000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

topology::RoutingTable one_machine_table(uint64_t machine_id, const std::string& address) {
  topology::Machine machine;
  machine.id = machine_id;
  machine.address = address;
  machine.internal_address = address;
  auto table = topology::RoutingTable::make_initial({machine}, 1, 1, 4);
  EXPECT_TRUE(table.is_ok()) << table.status().to_string();
  return std::move(*table);
}

OrchestratorAgentOptions agent_options(const std::string& orchestrator) {
  OrchestratorAgentOptions options;
  options.orchestrator = orchestrator;
  options.cluster_secret = std::string(kSecret);
  options.machine_id = 7;
  options.address = "127.0.0.1:7001";
  options.request_timeout_ms = 500;
  options.heartbeat_interval_ms = 20;
  options.retry_interval_max_ms = 100;
  return options;
}

TEST(HttpEndpointTest, ParsesHostAndPort) {
  auto endpoint = parse_http_endpoint("127.0.0.1:7700");
  ASSERT_TRUE(endpoint.is_ok());
  EXPECT_EQ(endpoint->host, "127.0.0.1");
  EXPECT_EQ(endpoint->port, 7700);
  auto v6 = parse_http_endpoint("[::1]:80");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->host, "::1");
  for (std::string_view bad : {"", "7700", ":7700", "host:", "host:0", "host:65536", "h:1x"}) {
    EXPECT_FALSE(parse_http_endpoint(bad).is_ok()) << bad;
  }
}

TEST(HttpClientTest, UnreachableIsAClearError) {
  // A port nothing listens on: bind one, then close it.
  uint16_t port = 0;
  {
    net::asio::io_context io;
    net::tcp::acceptor acceptor(io,
                              net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }
  HttpRequest request;
  request.target = "/v1/status";
  auto response = http_call({"127.0.0.1", port}, request, 500);
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(response.status().message().find("cannot reach 127.0.0.1:"), std::string::npos)
      << response.status().message();
}

TEST(OrchestratorAgentTest, CreateChecksItsOptions) {
  replica::TableHolder tables;
  EXPECT_FALSE(OrchestratorAgent::create(agent_options("nowhere"), tables).is_ok());
  auto no_secret = agent_options("127.0.0.1:1");
  no_secret.cluster_secret.clear();
  EXPECT_FALSE(OrchestratorAgent::create(no_secret, tables).is_ok());
  auto no_id = agent_options("127.0.0.1:1");
  no_id.machine_id = 0;
  EXPECT_FALSE(OrchestratorAgent::create(no_id, tables).is_ok());
  EXPECT_TRUE(OrchestratorAgent::create(agent_options("127.0.0.1:1"), tables).is_ok());
}

TEST(OrchestratorAgentTest, RegistersHeartbeatsAndInstallsNewerTables) {
  std::atomic<uint64_t> epoch{0};
  const topology::RoutingTable table = one_machine_table(7, "127.0.0.1:7001");
  FakeOrchestrator fake([&](const FakeRequest& request) -> FakeAnswer {
    if (request.authorization != "Bearer " + std::string(kSecret)) return {401, "{}"};
    if (request.target == "/v1/register") {
      return {200, json{{"machine_id", 7}, {"epoch", epoch.load()},
                        {"heartbeat_interval_ms", 20}}.dump()};
    }
    if (request.target == "/v1/heartbeat") {
      return {200, json{{"epoch", epoch.load()}, {"state", "up"}, {"lease_ms", 2000}}.dump()};
    }
    if (request.target == "/v1/table") {
      if (epoch.load() == 0) return {404, R"({"error": "not bootstrapped"})"};
      return {200, table.to_json_text()};
    }
    return {404, R"({"error": "no such endpoint"})"};
  });
  replica::TableHolder tables;
  auto agent = OrchestratorAgent::create(agent_options(fake.address()), tables);
  ASSERT_TRUE(agent.is_ok()) << agent.status().to_string();
  EXPECT_FALSE((*agent)->lease_valid());  // no heartbeat answered yet
  (*agent)->start();

  ASSERT_TRUE(eventually([&] { return (*agent)->stats().heartbeats >= 3; }));
  EXPECT_TRUE((*agent)->lease_valid());
  EXPECT_EQ(tables.epoch(), 0u);
  EXPECT_EQ(fake.count("/v1/table"), 0u);  // epoch 0: nothing to fetch
  OrchestratorAgentStats stats = (*agent)->stats();
  EXPECT_TRUE(stats.registered);
  EXPECT_EQ(stats.registrations, 1u);
  EXPECT_EQ(stats.state, "up");

  epoch = 1;
  ASSERT_TRUE(eventually([&] { return tables.epoch() == 1; }));
  EXPECT_EQ(*tables.current(), table);
  // Fetched once: later heartbeats find the table current.
  const size_t heartbeats = (*agent)->stats().heartbeats;
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().heartbeats >= heartbeats + 3; }));
  EXPECT_EQ(fake.count("/v1/table"), 1u);
  EXPECT_EQ((*agent)->stats().tables_installed, 1u);
  (*agent)->stop();

  const std::vector<FakeRequest> requests = fake.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.front().method, "POST");
  EXPECT_EQ(requests.front().target, "/v1/register");
  const json registration = json::parse(requests.front().body);
  EXPECT_EQ(registration["machine_id"], 7);
  EXPECT_EQ(registration["address"], "127.0.0.1:7001");
  const FakeRequest& last = requests.back();
  ASSERT_EQ(last.target, "/v1/heartbeat");
  const json heartbeat = json::parse(last.body);
  EXPECT_EQ(heartbeat["machine_id"], 7);
  EXPECT_EQ(heartbeat["epoch"], 1);  // the machine reports the epoch it follows
  for (const char* field : {"ops_per_sec", "bytes", "storage_bytes", "p99_us"}) {
    EXPECT_TRUE(heartbeat["load"].contains(field)) << field;
  }
}

TEST(OrchestratorAgentTest, HeartbeatsCarryTheLoadPerRangeTheOrchestratorParses) {
  FakeOrchestrator fake([&](const FakeRequest& request) -> FakeAnswer {
    if (request.target == "/v1/register") {
      return {200, json{{"machine_id", 7}, {"epoch", 0}, {"heartbeat_interval_ms", 20}}.dump()};
    }
    return {200, json{{"epoch", 0}, {"state", "up"}, {"lease_ms", 2000}}.dump()};
  });
  replica::TableHolder tables;
  OrchestratorAgentOptions options = agent_options(fake.address());
  options.load = [] {
    MachineLoadCounters counters;
    counters.ops_per_sec = 125.5;
    counters.p99_us = 900;
    metrics::RangeLoadReport range;
    range.start = 0x10;
    range.end = 0x20;
    range.writes_per_sec = 100;
    range.top_keys = {{"hot", 42, 0}};
    counters.ranges.push_back(range);
    return counters;
  };
  auto agent = OrchestratorAgent::create(std::move(options), tables);
  ASSERT_TRUE(agent.is_ok()) << agent.status().to_string();
  (*agent)->start();
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().heartbeats >= 1; }));
  (*agent)->stop();
  const FakeRequest last = fake.requests().back();
  ASSERT_EQ(last.target, "/v1/heartbeat");
  const json load = json::parse(last.body)["load"];
  EXPECT_EQ(load["ops_per_sec"], 125.5);
  EXPECT_EQ(load["p99_us"], 900);
  // What the orchestrator's parser reads back (metrics/range_load.h is both sides' codec).
  auto ranges = metrics::range_reports_from_json(load["ranges"]);
  ASSERT_TRUE(ranges.is_ok()) << ranges.status().message();
  ASSERT_EQ(ranges->size(), 1u);
  EXPECT_EQ((*ranges)[0].start, 0x10u);
  EXPECT_EQ((*ranges)[0].writes_per_sec, 100);
  EXPECT_EQ((*ranges)[0].top_keys[0].key, "hot");
}

TEST(OrchestratorAgentTest, AForgottenMachineRegistersAgain) {
  std::atomic<int> heartbeats{0};
  FakeOrchestrator fake([&](const FakeRequest& request) -> FakeAnswer {
    if (request.target == "/v1/register") {
      return {200, json{{"machine_id", 7}, {"epoch", 0}, {"heartbeat_interval_ms", 20}}.dump()};
    }
    // The orchestrator lost its state once, after the second heartbeat.
    if (++heartbeats == 2) return {404, R"({"error": "unknown machine"})"};
    return {200, json{{"epoch", 0}, {"state", "up"}, {"lease_ms", 2000}}.dump()};
  });
  replica::TableHolder tables;
  auto agent = OrchestratorAgent::create(agent_options(fake.address()), tables);
  ASSERT_TRUE(agent.is_ok());
  (*agent)->start();
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().registrations == 2; }));
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().heartbeats >= 3; }));
  EXPECT_EQ(fake.count("/v1/register"), 2u);
}

TEST(OrchestratorAgentTest, TheLeaseCountsFromTheLastHeartbeatSent) {
  std::atomic<int64_t> now{10'000};
  std::atomic<bool> answer_heartbeats{true};
  FakeOrchestrator fake([&](const FakeRequest& request) -> FakeAnswer {
    if (request.target == "/v1/register") {
      return {200, json{{"machine_id", 7}, {"epoch", 0}, {"heartbeat_interval_ms", 20}}.dump()};
    }
    if (!answer_heartbeats) return {503, R"({"error": "busy"})"};
    return {200, json{{"epoch", 0}, {"state", "up"}, {"lease_ms", 300}}.dump()};
  });
  replica::TableHolder tables;
  auto options = agent_options(fake.address());
  options.monotonic_ms = [&] { return now.load(); };
  auto agent = OrchestratorAgent::create(options, tables);
  ASSERT_TRUE(agent.is_ok());
  (*agent)->start();
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().heartbeats >= 1; }));
  answer_heartbeats = false;
  const uint64_t failed = (*agent)->stats().failed_calls;
  // Once a refused heartbeat went by, no later one can have renewed the lease.
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().failed_calls > failed; }));
  EXPECT_TRUE((*agent)->lease_valid());
  now = 10'000 + 299;
  EXPECT_TRUE((*agent)->lease_valid());
  now = 10'000 + 300;
  EXPECT_FALSE((*agent)->lease_valid());
  // Answered again: renewed from the new send time.
  answer_heartbeats = true;
  ASSERT_TRUE(eventually([&] { return (*agent)->lease_valid(); }));
}

TEST(OrchestratorAgentTest, AnUnreachableOrchestratorGrantsNoLeaseAndStopIsPrompt) {
  uint16_t port = 0;
  {
    net::asio::io_context io;
    net::tcp::acceptor acceptor(io,
                              net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }
  replica::TableHolder tables;
  auto agent = OrchestratorAgent::create(agent_options("127.0.0.1:" + std::to_string(port)), tables);
  ASSERT_TRUE(agent.is_ok());
  (*agent)->start();
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().failed_calls >= 3; }));
  EXPECT_FALSE((*agent)->stats().registered);
  EXPECT_FALSE((*agent)->lease_valid());
  const auto started = std::chrono::steady_clock::now();
  (*agent)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1000));
}

TEST(OrchestratorFlagTest, NeedsAClusterSecret) {
  auto parse = [](std::vector<std::string> args) {
    CLI::App app;
    ServerFlags flags;
    flags.add_to(app);
    std::reverse(args.begin(), args.end());
    app.parse(args);
    return flags.resolve();
  };
  EXPECT_FALSE(parse({"--orchestrator", "127.0.0.1:7700"}).is_ok());
  EXPECT_FALSE(parse({"--cluster-secret", "s", "--orchestrator", "nowhere"}).is_ok());
  auto config = parse({"--cluster-secret", "s", "--orchestrator", "127.0.0.1:7700"});
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  EXPECT_EQ(config->orchestrator, "127.0.0.1:7700");
  EXPECT_EQ(setting_value(*config, "orchestrator"), "127.0.0.1:7700");
}

// A fake orchestrator for one whole server: it builds a one-machine table from the address the
// machine registers with, serves it, and answers heartbeats with `heartbeat()`.
FakeOrchestrator::Handler one_machine_orchestrator(std::function<FakeAnswer()> heartbeat) {
  auto mu = std::make_shared<std::mutex>();
  auto table_text = std::make_shared<std::string>();
  return [mu, table_text, heartbeat = std::move(heartbeat)](const FakeRequest& request)
             -> FakeAnswer {
    std::lock_guard lock(*mu);
    if (request.target == "/v1/register") {
      const json body = json::parse(request.body);
      *table_text = one_machine_table(body["machine_id"].get<uint64_t>(),
                                      body["address"].get<std::string>())
                        .to_json_text();
      return {200, json{{"machine_id", body["machine_id"]}, {"epoch", 1},
                        {"heartbeat_interval_ms", 20}}.dump()};
    }
    if (request.target == "/v1/heartbeat") return heartbeat();
    if (request.target == "/v1/table" && !table_text->empty()) return {200, *table_text};
    return {404, R"({"error": "not found"})"};
  };
}

// The config of a server managed by `fake`, with its data under `root`.
ServerConfig managed_server_config(const FakeOrchestrator& fake,
                                   const std::filesystem::path& root) {
  ServerConfig config;
  config.port = 0;
  config.data_dir = (root / "m").string();
  config.threads = 1;
  config.workers = 2;
  config.cluster_secret = std::string(kSecret);
  config.orchestrator = fake.address();
  config.request_timeout_ms = 500;
  return config;
}

// A whole server managed by the fake: it registers once it listens, follows the table the
// orchestrator builds for it, and acts as its shard's leader only while heartbeats are answered.
TEST(OrchestratorServerTest, FollowsTheOrchestratorsTableAndFencesItselfWithoutALease) {
  std::atomic<bool> answer_heartbeats{true};
  FakeOrchestrator fake(one_machine_orchestrator([&]() -> FakeAnswer {
    if (!answer_heartbeats) return {503, R"({"error": "busy"})"};
    return {200, json{{"epoch", 1}, {"state", "up"}, {"lease_ms", 300}}.dump()};
  }));
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() /
      ("cairn-agent-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  const ServerConfig config = managed_server_config(fake, root);
  {
    auto server = Server::start(config);
    ASSERT_TRUE(server.is_ok()) << server.status().to_string();
    RawClient client((*server)->port());
    // Until the table arrives the machine owns nothing; then it serves, and once a heartbeat
    // was answered it acts as the shard's leader.
    ASSERT_TRUE(eventually([&] { return client.line(command({"SET", "k", "v"})) == "+OK\r\n"; }));
    std::string reply;
    ASSERT_TRUE(eventually([&] {
      reply = client.line(command({"INCR", "n"}));
      return reply == ":1\r\n";
    })) << reply;

    // Heartbeats refused: within the lease (300 ms) the machine stops acting as leader.
    answer_heartbeats = false;
    ASSERT_TRUE(eventually([&] {
      reply = client.line(command({"INCR", "n"}));
      return reply.find("NOLEADER") != std::string::npos;
    })) << reply;
    EXPECT_EQ(reply.rfind("-NOLEADER shard 1 ", 0), 0u) << reply;
    // Plain writes need no leader.
    EXPECT_EQ(client.line(command({"SET", "k", "w"})), "+OK\r\n");

    answer_heartbeats = true;
    ASSERT_TRUE(eventually([&] {
      reply = client.line(command({"INCR", "n"}));
      return !reply.empty() && reply[0] == ':';
    })) << reply;
    const int64_t value = std::stoll(reply.substr(1));
    EXPECT_EQ(client.line(command({"INCR", "n"})), ":" + std::to_string(value + 1) + "\r\n");
  }
  // Restarted while the orchestrator refuses heartbeats, it serves with the table it saved.
  answer_heartbeats = false;
  {
    auto server = Server::start(config);
    ASSERT_TRUE(server.is_ok()) << server.status().to_string();
    RawClient client((*server)->port());
    client.send(command({"GET", "k"}));
    EXPECT_EQ(client.read(test_support::bulk("w").size()), test_support::bulk("w"));
  }
  std::filesystem::remove_all(root);
}

// The clock guard end to end: the fake orchestrator's clock jumps an hour behind the machine's,
// and the machine stops coordinating writes (reads go on) until the clocks agree again.
TEST(OrchestratorServerTest, AMachineWhoseClockIsOutOfBoundRefusesWrites) {
  std::atomic<int64_t> orchestrator_behind_ms{0};
  FakeOrchestrator fake(one_machine_orchestrator([&]() -> FakeAnswer {
    return {200, json{{"epoch", 1}, {"state", "up"}, {"lease_ms", 2000},
                      {"time_ms", wall_clock_ms() - orchestrator_behind_ms.load()}}.dump()};
  }));
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() /
      ("cairn-clock-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  ServerConfig config = managed_server_config(fake, root);
  config.max_clock_offset_ms = 500;
  {
    auto server = Server::start(config);
    ASSERT_TRUE(server.is_ok()) << server.status().to_string();
    RawClient client((*server)->port());
    ASSERT_TRUE(eventually([&] { return client.line(command({"SET", "k", "v"})) == "+OK\r\n"; }));
    ASSERT_TRUE(eventually([&] { return client.line(command({"INCR", "n"})) == ":1\r\n"; }));

    orchestrator_behind_ms = 3'600'000;  // this machine is now an hour ahead
    std::string reply;
    ASSERT_TRUE(eventually([&] {
      reply = client.line(command({"SET", "probe", "late"}));  // applied until the next heartbeat
      return reply.rfind("-CLOCKSKEW", 0) == 0;
    })) << reply;
    EXPECT_NE(reply.find("ahead of the orchestrator's"), std::string::npos) << reply;
    // Every kind of write is refused: read-modify-write, fields, deletes, FLUSHALL.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"SET", "k", "late"}, {"INCR", "n"}, {"HSET", "h", "f", "v"}, {"DEL", "k"},
             {"FLUSHALL"}}) {
      reply = client.line(command(args));
      EXPECT_EQ(reply.rfind("-CLOCKSKEW", 0), 0u) << args[0] << ": " << reply;
    }
    // Reads go on, and nothing was written.
    client.send(command({"GET", "k"}));
    EXPECT_EQ(client.read(test_support::bulk("v").size()), test_support::bulk("v"));
    client.send(command({"INFO", "cluster"}));
    const std::string header = client.read_until("\r\n");  // $<length>
    ASSERT_EQ(header.front(), '$') << header;
    const std::string info = client.read(std::stoul(header.substr(1)) + 2);
    EXPECT_NE(info.find("clock_in_bound:0"), std::string::npos) << info;

    orchestrator_behind_ms = 0;
    ASSERT_TRUE(eventually([&] { return client.line(command({"INCR", "n"})) == ":2\r\n"; }));
    EXPECT_EQ(client.line(command({"SET", "k", "w"})), "+OK\r\n");
  }
  std::filesystem::remove_all(root);
}

TEST(OrchestratorAgentTest, MeasuresItsClockAgainstTheOrchestratorsAndReportsIt) {
  std::atomic<int64_t> orchestrator_ahead_ms{0};
  FakeOrchestrator fake([&](const FakeRequest& request) -> FakeAnswer {
    if (request.target == "/v1/register") {
      return {200, json{{"machine_id", 7}, {"epoch", 0}, {"heartbeat_interval_ms", 20}}.dump()};
    }
    return {200, json{{"epoch", 0}, {"state", "up"}, {"lease_ms", 2000},
                      {"time_ms", wall_clock_ms() + orchestrator_ahead_ms.load()}}.dump()};
  });
  std::mutex mu;
  std::vector<bool> verdicts;
  OrchestratorAgentOptions options = agent_options(fake.address());
  options.max_clock_offset_ms = 500;
  options.on_clock = [&](const ClockOffset& clock) {
    std::lock_guard lock(mu);
    verdicts.push_back(clock.in_bound());
  };
  replica::TableHolder tables;
  auto agent = OrchestratorAgent::create(std::move(options), tables);
  ASSERT_TRUE(agent.is_ok()) << agent.status().to_string();
  (*agent)->start();
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().clock_measured; }));
  EXPECT_TRUE((*agent)->stats().clock_in_bound);
  EXPECT_LE(std::llabs((*agent)->stats().clock_offset_ms), (*agent)->stats().clock_error_ms + 5);

  orchestrator_ahead_ms = 10'000;  // this machine is 10 s behind
  ASSERT_TRUE(eventually([&] { return !(*agent)->stats().clock_in_bound; }));
  EXPECT_NEAR(static_cast<double>((*agent)->stats().clock_offset_ms), 10'000.0, 100.0);
  // The next heartbeats tell the orchestrator.
  ASSERT_TRUE(eventually([&] {
    for (const FakeRequest& request : fake.requests()) {
      if (request.target != "/v1/heartbeat") continue;
      const json body = json::parse(request.body);
      if (body.contains("clock") && body["clock"]["in_bound"] == false &&
          body["clock"]["offset_ms"].get<int64_t>() > 9'000) {
        return true;
      }
    }
    return false;
  }));
  orchestrator_ahead_ms = 0;
  ASSERT_TRUE(eventually([&] { return (*agent)->stats().clock_in_bound; }));
  (*agent)->stop();
  std::lock_guard lock(mu);
  ASSERT_FALSE(verdicts.empty());
  EXPECT_TRUE(verdicts.front());
  EXPECT_TRUE(std::find(verdicts.begin(), verdicts.end(), false) != verdicts.end());
  EXPECT_TRUE(verdicts.back());
}

// A port nothing listens on (bound, then closed): connecting to it is refused at once.
uint16_t closed_port() {
  net::asio::io_context io;
  net::tcp::acceptor acceptor(io,
                              net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

TEST(OrchestratorClientTest, ParsesLists) {
  auto three = parse_orchestrator_list("127.0.0.1:7700,127.0.0.1:7701,[::1]:7702");
  ASSERT_TRUE(three.is_ok());
  EXPECT_EQ(three->size(), 3u);
  EXPECT_FALSE(parse_orchestrator_list("").is_ok());
  EXPECT_FALSE(parse_orchestrator_list("127.0.0.1:7700,").is_ok());
  EXPECT_FALSE(parse_orchestrator_list("127.0.0.1").is_ok());
}

TEST(OrchestratorClientTest, SkipsTheDeadFollowsTheRedirectAndRemembersTheLeader) {
  std::atomic<int> leader_status{200};
  FakeOrchestrator leader([&](const FakeRequest&) {
    return FakeAnswer{leader_status.load(), R"({"ok": true})"};
  });
  FakeOrchestrator follower([&](const FakeRequest&) {
    return FakeAnswer{307,
                      json{{"error", "not the leader"}, {"leader", leader.address()}}.dump()};
  });
  const std::string dead = "127.0.0.1:" + std::to_string(closed_port());
  auto list = parse_orchestrator_list(dead + "," + follower.address() + "," + leader.address());
  ASSERT_TRUE(list.is_ok());
  OrchestratorClient client(std::move(*list));
  HttpRequest request;
  request.method = "POST";
  request.target = "/v1/heartbeat";
  request.body = "{}";
  auto answer = client.call(request, 500);
  ASSERT_TRUE(answer.is_ok()) << answer.status().to_string();
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(follower.count("/v1/heartbeat"), 1u);
  EXPECT_EQ(leader.count("/v1/heartbeat"), 1u);
  EXPECT_EQ(client.current(), leader.address());
  // The next call goes straight to the leader.
  answer = client.call(request, 500);
  ASSERT_TRUE(answer.is_ok());
  EXPECT_EQ(follower.count("/v1/heartbeat"), 1u);
  EXPECT_EQ(leader.count("/v1/heartbeat"), 2u);
  // The leader steps down (503) and the follower still names it: the call tries every listed
  // address once and the redirects at most twice, then gives up with the last answer.
  leader_status = 503;
  answer = client.call(request, 500);
  ASSERT_TRUE(answer.is_ok());
  EXPECT_TRUE(answer->status == 503 || answer->status == 307) << answer->status;
  EXPECT_LE(leader.count("/v1/heartbeat"), 2u + 1u + 2u + 1u);
}

TEST(OrchestratorClientTest, OneAddressIsOneRequest) {
  FakeOrchestrator only([](const FakeRequest&) { return FakeAnswer{503, R"({"error": "x"})"}; });
  auto list = parse_orchestrator_list(only.address());
  ASSERT_TRUE(list.is_ok());
  OrchestratorClient client(std::move(*list));
  HttpRequest request;
  request.target = "/v1/status";
  auto answer = client.call(request, 500);
  ASSERT_TRUE(answer.is_ok());
  EXPECT_EQ(answer->status, 503);
  EXPECT_EQ(only.count("/v1/status"), 1u);
}

}  // namespace
}  // namespace cairn::server
