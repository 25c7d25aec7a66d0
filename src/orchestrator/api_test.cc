#include "orchestrator/api.h"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "orchestrator/http_server.h"

namespace cairn::orchestrator {
namespace {

using nlohmann::json;

class FakeClock final : public Clock {
 public:
  int64_t monotonic_ms() override { return 5'000'000; }
  int64_t wall_ms() override { return 1'700'000'000'000; }
};

constexpr const char* kSecret = "s3cret";
constexpr const char* kAuth = "Bearer s3cret";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServiceSettings settings;
    settings.replication_factor = 1;
    settings.initial_shards = 1;
    settings.ranges_per_shard = 2;
    auto service = Service::open(settings, &clock_);
    ASSERT_TRUE(service.is_ok()) << service.status().to_string();
    service_ = std::move(*service);
    router_ = std::make_unique<ApiRouter>(service_.get(), kSecret);
  }
  ApiResponse get(const std::string& target) {
    return router_->handle(ApiRequest{"GET", target, "", ""});
  }
  ApiResponse post(const std::string& target, const json& body, std::string auth = kAuth) {
    return router_->handle(ApiRequest{"POST", target, std::move(auth), body.dump()});
  }

  FakeClock clock_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<ApiRouter> router_;
};

// An operator's request whose decision cannot be stored (a full disk) is answered 503 with the
// reason, and succeeds once the state can be written again.
TEST(ApiStateTest, ADecisionThatCannotBeStoredIsAnswered503) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("cairn_api_state_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  bool disk_full = false;
  ServiceSettings settings;
  settings.replication_factor = 1;
  settings.initial_shards = 1;
  settings.ranges_per_shard = 2;
  settings.state_path = (dir / "state.json").string();
  settings.save_file = [&](const std::string& path, const State& state) {
    if (disk_full) return Status::io_error("write state.json.tmp: No space left on device");
    return save_state(path, state);
  };
  FakeClock clock;
  auto service = Service::open(settings, &clock);
  ASSERT_TRUE(service.is_ok()) << service.status().to_string();
  ApiRouter router(service->get(), kSecret);
  ASSERT_TRUE((*service)->register_machine(1, "127.0.0.1:7001", "").is_ok());
  disk_full = true;
  ApiResponse refused =
      router.handle(ApiRequest{"POST", "/v1/machines/1/drain", kAuth, json::object().dump()});
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(json::parse(refused.body)["error"].get<std::string>().find("No space left"),
            std::string::npos)
      << refused.body;
  disk_full = false;
  EXPECT_EQ(router.handle(ApiRequest{"POST", "/v1/machines/1/drain", kAuth, "{}"}).status, 200);
  std::filesystem::remove_all(dir);
}

TEST_F(ApiTest, DashboardIsAnHtmlPageThatReadsTheApi) {
  ApiResponse page = get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  for (const char* endpoint : {"/v1/status", "/v1/machines", "/v1/shards", "/v1/ring", "/v1/events",
                               "/v1/migrations"}) {
    EXPECT_NE(page.body.find(endpoint), std::string::npos) << endpoint;
  }
  EXPECT_EQ(get("/v1/status").content_type, "application/json");
}

TEST_F(ApiTest, PostsNeedTheClusterSecret) {
  json body = {{"machine_id", 1}, {"address", "127.0.0.1:7001"}};
  EXPECT_EQ(post("/v1/register", body, "").status, 401);
  EXPECT_EQ(post("/v1/register", body, "Bearer wrong").status, 401);
  EXPECT_EQ(post("/v1/register", body, "s3cret").status, 401);
  EXPECT_EQ(post("/v1/machines/1/drain", json::object(), "").status, 401);
  EXPECT_EQ(post("/v1/register", body).status, 200);
  // An empty secret never opens the API.
  ApiRouter open_router(service_.get(), "");
  EXPECT_EQ(open_router.handle(ApiRequest{"POST", "/v1/register", "Bearer ", body.dump()}).status,
            401);
}

TEST_F(ApiTest, RegisterHeartbeatAndTable) {
  EXPECT_EQ(get("/v1/table").status, 404);  // not bootstrapped
  auto registered = post("/v1/register", {{"machine_id", 1}, {"address", "127.0.0.1:7001"}});
  ASSERT_EQ(registered.status, 200) << registered.body;
  json reply = json::parse(registered.body);
  EXPECT_EQ(reply["machine_id"], 1);
  EXPECT_EQ(reply["heartbeat_interval_ms"], 250);
  EXPECT_GE(reply["epoch"].get<uint64_t>(), 1u);  // RF 1, 1 shard: bootstrapped at once

  auto beat = post("/v1/heartbeat", {{"machine_id", 1},
                                     {"epoch", 1},
                                     {"load", {{"ops_per_sec", 12.5}, {"bytes", 10},
                                               {"storage_bytes", 20}, {"p99_us", 300}}}});
  ASSERT_EQ(beat.status, 200) << beat.body;
  reply = json::parse(beat.body);
  EXPECT_EQ(reply["lease_ms"], 2000);
  EXPECT_EQ(reply["state"], "up");
  EXPECT_GE(reply["epoch"].get<uint64_t>(), 1u);

  auto table = get("/v1/table");
  ASSERT_EQ(table.status, 200);
  auto parsed = topology::RoutingTable::from_json_text(table.body);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->shards().size(), 1u);

  auto machines = json::parse(get("/v1/machines").body);
  ASSERT_EQ(machines.size(), 1u);
  EXPECT_EQ(machines[0]["id"], 1);
  EXPECT_EQ(machines[0]["health"], "up");
  EXPECT_EQ(machines[0]["shard"], 1);
  EXPECT_EQ(machines[0]["load"]["ops_per_sec"], 12.5);
  EXPECT_EQ(machines[0]["last_heartbeat_ms_ago"], 0);

  auto shards = json::parse(get("/v1/shards").body);
  ASSERT_EQ(shards.size(), 1u);
  EXPECT_EQ(shards[0]["replicas"], json::array({1}));
  EXPECT_EQ(shards[0]["ranges"], 2);
  auto ring = json::parse(get("/v1/ring").body);
  ASSERT_EQ(ring.size(), 2u);
  EXPECT_EQ(ring[0]["start"], "0x0000000000000000");
  auto status = json::parse(get("/v1/status").body);
  EXPECT_EQ(status["bootstrapped"], true);
  EXPECT_EQ(status["replication_factor"], 1);
  EXPECT_TRUE(json::parse(get("/v1/history").body).is_array());
}

TEST_F(ApiTest, HeartbeatRangesFeedLoadAndMetrics) {
  ASSERT_EQ(post("/v1/register", {{"machine_id", 1}, {"address", "127.0.0.1:7001"}}).status, 200);
  const json ring = json::parse(get("/v1/ring").body);
  ASSERT_EQ(ring.size(), 2u);
  json ranges = json::array();
  ranges.push_back({{"start", ring[0]["start"]}, {"end", ring[0]["end"]}, {"writes_per_sec", 200.0},
                    {"writes_total", 2000}, {"p99_us", 450}, {"keys", 10}, {"bytes", 4096},
                    {"top_keys", json::array({{{"key", "hot"}, {"count", 1500}}})}});
  auto beat = post("/v1/heartbeat", {{"machine_id", 1}, {"epoch", 1},
                                     {"load", {{"ops_per_sec", 200.0}, {"ranges", ranges}}}});
  ASSERT_EQ(beat.status, 200) << beat.body;
  const json load = json::parse(get("/v1/load").body);
  ASSERT_EQ(load["shards"].size(), 1u);
  const json& shard = load["shards"][0];
  EXPECT_EQ(shard["writes_per_sec"], 200.0);
  EXPECT_EQ(shard["p99_us"], 450);
  EXPECT_EQ(shard["bytes"], 4096);
  EXPECT_EQ(shard["machines_reporting"], 1);
  EXPECT_EQ(shard["top_keys"][0]["key"], "hot");
  ASSERT_EQ(shard["ranges"].size(), 2u);
  EXPECT_EQ(shard["ranges"][1]["writes_total"], 0);
  EXPECT_FALSE(shard.contains("history"));
  service_->tick();
  const json with_history = json::parse(get("/v1/load?history=1").body);
  EXPECT_EQ(with_history["shards"][0]["history"]["seconds"].size(), 1u);
  EXPECT_EQ(get("/v1/load?what=1").status, 400);
  // A malformed range report is refused, naming the field.
  ranges[0]["p99_us"] = -1;
  auto bad = post("/v1/heartbeat", {{"machine_id", 1}, {"load", {{"ranges", ranges}}}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("p99_us"), std::string::npos) << bad.body;

  const ApiResponse metrics = get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type.rfind("text/plain", 0), 0u);
  EXPECT_NE(metrics.body.find("cairn_machines{state=\"up\"} 1\n"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("cairn_shards 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("cairn_shard_writes_per_second{shard=\"1\"} 200\n"),
            std::string::npos)
      << metrics.body;
}

TEST_F(ApiTest, HeartbeatRepairReportsShowPerShard) {
  ASSERT_EQ(post("/v1/register", {{"machine_id", 1}, {"address", "127.0.0.1:7001"}}).status, 200);
  auto before = json::parse(get("/v1/repair").body);
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0]["shard"], 1);
  EXPECT_EQ(before[0]["last_full_age_s"], nullptr);  // nobody reported yet
  EXPECT_EQ(before[0]["replicas"][0]["reported"], false);

  const int64_t when = clock_.wall_ms() - 42'000;
  auto beat = post("/v1/heartbeat",
                   {{"machine_id", 1},
                    {"epoch", 1},
                    {"repair", json::array({{{"shard", 1}, {"last_full_ms", when},
                                             {"passes", 3}, {"complete_passes", 2},
                                             {"cells_fixed", 17}, {"last_pass_fixed", 5},
                                             {"running", true}, {"progress", 0.5},
                                             {"problem", "machine 2 did not answer"}}})}});
  ASSERT_EQ(beat.status, 200) << beat.body;
  auto after = json::parse(get("/v1/repair").body);
  EXPECT_EQ(after[0]["last_full_ms"], when);
  EXPECT_EQ(after[0]["last_full_age_s"], 42);
  EXPECT_EQ(after[0]["cells_fixed"], 17);
  EXPECT_EQ(after[0]["last_pass_fixed"], 5);
  EXPECT_EQ(after[0]["running"], true);
  const json& replica = after[0]["replicas"][0];
  EXPECT_EQ(replica["machine"], 1);
  EXPECT_EQ(replica["complete_passes"], 2);
  EXPECT_EQ(replica["progress"], 0.5);
  EXPECT_EQ(replica["problem"], "machine 2 did not answer");

  // Malformed reports are refused with a clear error.
  for (const json& bad : {json("x"), json::array({1}), json::array({{{"passes", 1}}})}) {
    auto refused = post("/v1/heartbeat", {{"machine_id", 1}, {"epoch", 1}, {"repair", bad}});
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_NE(json::parse(refused.body)["error"].get<std::string>().find("repair"),
              std::string::npos)
        << refused.body;
  }
}

TEST_F(ApiTest, HeartbeatFromAnUnknownMachineIs404) {
  auto beat = post("/v1/heartbeat", {{"machine_id", 77}, {"epoch", 0}});
  EXPECT_EQ(beat.status, 404);
  EXPECT_EQ(json::parse(beat.body)["error"], "unknown machine");
}

TEST_F(ApiTest, BadRequestsAreClearErrors) {
  auto bad = router_->handle(ApiRequest{"POST", "/v1/register", kAuth, "{not json"});
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(json::parse(bad.body).contains("error"));
  EXPECT_EQ(post("/v1/register", {{"machine_id", 1}}).status, 400);
  EXPECT_EQ(post("/v1/register", {{"machine_id", -3}, {"address", "127.0.0.1:1"}}).status, 400);
  EXPECT_EQ(post("/v1/register", {{"machine_id", 2}, {"address", "no-port"}}).status, 400);
  EXPECT_EQ(post("/v1/heartbeat", {{"epoch", 1}}).status, 400);
  EXPECT_EQ(post("/v1/heartbeat", {{"machine_id", 1}, {"load", {{"bytes", "x"}}}}).status, 400);
  EXPECT_EQ(get("/v1/nothing").status, 404);
  EXPECT_EQ(get("/v1/events?since=abc").status, 400);
  EXPECT_EQ(get("/v1/events?until=3").status, 400);
  EXPECT_EQ(router_->handle(ApiRequest{"DELETE", "/v1/table", kAuth, ""}).status, 405);
  EXPECT_EQ(post("/v1/machines/abc/drain", json::object()).status, 400);
  EXPECT_EQ(post("/v1/machines/5/explode", json::object()).status, 404);
}

TEST_F(ApiTest, DrainAndRemove) {
  ASSERT_EQ(post("/v1/register", {{"machine_id", 1}, {"address", "127.0.0.1:7001"}}).status, 200);
  ASSERT_EQ(post("/v1/register", {{"machine_id", 2}, {"address", "127.0.0.1:7002"}}).status, 200);
  EXPECT_EQ(post("/v1/machines/9/drain", json::object()).status, 404);
  EXPECT_EQ(post("/v1/machines/9/remove", json::object()).status, 404);
  // Machine 1 holds the only replica of the shard: removal is refused until it is drained.
  auto refused = post("/v1/machines/1/remove", json::object());
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(json::parse(refused.body)["error"].get<std::string>().find("drain"),
            std::string::npos);
  auto drained = post("/v1/machines/1/drain", json::object());
  EXPECT_EQ(drained.status, 200);
  EXPECT_EQ(json::parse(drained.body)["ok"], true);
  auto events = json::parse(get("/v1/events?since=0").body);
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events.back()["message"].get<std::string>().find(""), std::string::npos);
  uint64_t last = events.back()["seq"];
  EXPECT_TRUE(json::parse(get("/v1/events?since=" + std::to_string(last)).body).empty());
}

// One real round trip: the HTTP server on an ephemeral port, a Beast client.
TEST_F(ApiTest, HttpRoundTrip) {
  net::asio::io_context io(1);
  auto server = HttpServer::start(io, "127.0.0.1", 0,
                                  [this](const ApiRequest& r) { return router_->handle(r); });
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  uint16_t port = (*server)->port();
  ASSERT_NE(port, 0);
  std::thread io_thread([&io] { io.run(); });
  // Whatever happens below (a failed expectation, an I/O error), stop the server and join.
  struct StopAndJoin {
    net::asio::io_context& io;
    HttpServer& server;
    std::thread& thread;
    ~StopAndJoin() {
      net::asio::post(io, [this] {
        server.close();
        io.stop();
      });
      thread.join();
    }
  } stop_and_join{io, **server, io_thread};

  namespace beast = boost::beast;
  namespace http = beast::http;
  net::asio::io_context client_io;
  beast::tcp_stream stream(client_io);
  stream.connect(net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), port));
  auto round_trip = [&](http::verb verb, const std::string& target, const std::string& body,
                        bool auth) {
    http::request<http::string_body> request{verb, target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (auth) request.set(http::field::authorization, kAuth);
    request.body() = body;
    request.prepare_payload();
    beast::error_code error;
    http::write(stream, request, error);
    EXPECT_FALSE(error) << target << ": " << error.message();
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response, error);
    EXPECT_FALSE(error) << target << ": " << error.message();
    return response;
  };
  auto registered = round_trip(http::verb::post, "/v1/register",
                               R"({"machine_id": 3, "address": "127.0.0.1:7003"})", true);
  EXPECT_EQ(registered.result_int(), 200u);
  EXPECT_EQ(registered[http::field::content_type], "application/json");
  EXPECT_EQ(json::parse(registered.body())["machine_id"], 3);
  // Same connection (keep-alive): a read without the secret, a write without it.
  auto status = round_trip(http::verb::get, "/v1/status", "", false);
  EXPECT_EQ(status.result_int(), 200u);
  EXPECT_EQ(json::parse(status.body())["machines"]["total"], 1);
  auto refused = round_trip(http::verb::post, "/v1/heartbeat", R"({"machine_id": 3})", false);
  EXPECT_EQ(refused.result_int(), 401u);
  // A body over the limit is refused from its Content-Length, before any of it is read. Only
  // the header is sent: the server answers and closes, so a client still writing the body
  // could see its connection reset instead of the answer.
  const std::string header = "POST /v1/register HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " +
                             std::string(kAuth) + "\r\nContent-Length: " +
                             std::to_string(kRequestBytesMax + 1) + "\r\n\r\n";
  beast::error_code error;
  net::asio::write(stream.socket(), net::asio::buffer(header), error);
  EXPECT_FALSE(error) << error.message();
  beast::flat_buffer buffer;
  http::response<http::string_body> too_big;
  http::read(stream, buffer, too_big, error);
  EXPECT_FALSE(error) << error.message();
  EXPECT_EQ(too_big.result_int(), 413u);
  stream.socket().shutdown(net::tcp::socket::shutdown_both, error);
}

TEST_F(ApiTest, MigrationsFromSplitToCommit) {
  for (int id : {1, 2}) {
    ASSERT_EQ(post("/v1/register", {{"machine_id", id},
                                    {"address", "127.0.0.1:700" + std::to_string(id)}})
                  .status,
              200);
  }
  // Shard 1 is machine 1; machine 2 is the spare a split takes.
  EXPECT_EQ(post("/v1/migrations", {{"kind", "split"}, {"shard", 1}}, "").status, 401);
  auto bad_kind = post("/v1/migrations", {{"kind", "merge"}});
  EXPECT_EQ(bad_kind.status, 400);
  auto unknown = post("/v1/migrations", {{"kind", "split"}, {"shard", 9}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(json::parse(unknown.body)["error"], "unknown shard 9");
  auto bad_token = post("/v1/migrations", {{"kind", "move"}, {"start", "0xZZ"}, {"to", 1}});
  EXPECT_EQ(bad_token.status, 400);

  auto split = post("/v1/migrations", {{"kind", "split"}, {"shard", 1}, {"max_rate", 1000}});
  ASSERT_EQ(split.status, 201) << split.body;
  json created = json::parse(split.body);
  EXPECT_EQ(created["new_shard"], 2);
  ASSERT_EQ(created["migrations"].size(), 1u);
  const uint64_t id = created["migrations"][0].get<uint64_t>();
  const std::string base = "/v1/migrations/" + std::to_string(id);

  // The new shard's replica finished its (empty) rebuild: it votes, the migration starts.
  ASSERT_EQ(post("/v1/heartbeat", {{"machine_id", 2}, {"rebuilt_shard", 2}}).status, 200);
  service_->tick();
  json list = json::parse(get("/v1/migrations").body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["phase"], "staging");
  EXPECT_EQ(list[0]["kind"], "split");
  EXPECT_EQ(list[0]["start"], "0x0000000000000000");
  EXPECT_EQ(list[0]["end"], "0x8000000000000000");

  json report = {{"machine_id", 2},
                 {"migrations", {{{"id", id}, {"staged", true}, {"ready", true}, {"keys", 3}}}}};
  auto beat = post("/v1/heartbeat", report);
  ASSERT_EQ(beat.status, 200) << beat.body;
  json orders = json::parse(beat.body)["migrations"];
  ASSERT_EQ(orders.size(), 1u);
  for (const char* name : {"id", "start", "end", "source", "target", "phase", "paused",
                           "max_rate", "attempt", "driver", "commit_epoch"}) {
    EXPECT_TRUE(orders[0].contains(name)) << name;
  }
  EXPECT_EQ(orders[0]["max_rate"], 1000);
  EXPECT_EQ(post("/v1/heartbeat", {{"machine_id", 2}, {"migrations", {{{"staged", true}}}}}).status,
            400);  // a report needs its id
  service_->tick();
  ASSERT_EQ(post("/v1/heartbeat", report).status, 200);
  service_->tick();
  json cutover = json::parse(post("/v1/heartbeat", report).body)["migrations"][0];
  EXPECT_EQ(cutover["phase"], "cutover");
  EXPECT_EQ(cutover["attempt"], 1);
  EXPECT_EQ(cutover["driver"], 2);

  const uint64_t epoch = service_->epoch();
  EXPECT_EQ(post(base + "/commit", {{"attempt", 1}, {"epoch", epoch}}, "").status, 401);
  auto refused = post(base + "/commit", {{"attempt", 1}, {"epoch", epoch - 1}});
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(json::parse(refused.body)["error"].get<std::string>().find("epoch"),
            std::string::npos);
  EXPECT_EQ(post(base + "/abort", {{"attempt", 7}, {"error", "x"}}).status, 409);
  auto committed = post(base + "/commit", {{"attempt", 1}, {"epoch", epoch}});
  ASSERT_EQ(committed.status, 200) << committed.body;
  EXPECT_EQ(json::parse(committed.body)["table"]["epoch"], epoch + 1);
  EXPECT_EQ(post(base + "/commit", {{"attempt", 1}, {"epoch", epoch + 1}}).status, 409);
  // The driver reports how long it fenced, once (0 ms is a time too).
  ASSERT_EQ(post("/v1/heartbeat",
                 {{"machine_id", 2}, {"migrations", {{{"id", id}, {"fence_ms", 0}, {"copy_ms", 5}}}}})
                .status,
            200);
  json fenced = json::parse(get("/v1/migrations").body)[0];
  EXPECT_EQ(fenced["fence_ms_last"], 0);
  EXPECT_EQ(service_->snapshot().migrations[0].fence_history.size(), 1u);
  auto cancel = post(base + "/cancel", json::object());
  EXPECT_EQ(cancel.status, 409);
  EXPECT_NE(cancel.body.find("already committed"), std::string::npos);
  EXPECT_EQ(post(base + "/pause", json::object()).status, 409);
  EXPECT_EQ(post(base + "/rate", {{"max_rate", 5}}).status, 200);
  EXPECT_EQ(post(base + "/rate", {{"max_rate", -5}}).status, 400);
  EXPECT_EQ(post("/v1/migrations/99/pause", json::object()).status, 404);
  EXPECT_EQ(post(base + "/explode", json::object()).status, 404);

  // The source cleans up; the migration is done and leaves the heartbeat answers.
  ASSERT_EQ(post("/v1/heartbeat",
                 {{"machine_id", 1}, {"migrations", {{{"id", id}, {"cleaned", true}}}}})
                .status,
            200);
  service_->tick();
  list = json::parse(get("/v1/migrations").body);
  EXPECT_EQ(list[0]["phase"], "done");
  EXPECT_FALSE(list[0]["active"].get<bool>());
  EXPECT_TRUE(json::parse(post("/v1/heartbeat", {{"machine_id", 1}}).body)["migrations"].empty());
}

}  // namespace
}  // namespace cairn::orchestrator
