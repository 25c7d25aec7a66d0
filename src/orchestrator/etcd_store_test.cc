// The pieces of the etcd store that need no etcd: base64, endpoint lists, the stored-state
// format, and a Service over a StateStore that refuses a write (it must be poisoned and never
// show what it could not store). The store against a real etcd is covered by
// tests/integration/orchestrator/test_orchestrator_ha.py.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "orchestrator/api.h"
#include "orchestrator/etcd_client.h"
#include "orchestrator/etcd_leadership.h"
#include "orchestrator/service.h"
#include "orchestrator/service_test_fixture.h"

namespace cairn::orchestrator {
namespace {

TEST(Base64Test, RoundTripsEveryLength) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("/cairn/default/leader"), "L2NhaXJuL2RlZmF1bHQvbGVhZGVy");
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 7));
    auto decoded = base64_decode(base64_encode(bytes));
    ASSERT_TRUE(decoded.is_ok());
    EXPECT_EQ(*decoded, bytes);
  }
  EXPECT_FALSE(base64_decode("Zg=").is_ok());
  EXPECT_FALSE(base64_decode("Z!==").is_ok());
  EXPECT_FALSE(base64_decode("Zg==Zg==").is_ok());
}

TEST(EtcdEndpointsTest, ParsesUrlLists) {
  auto endpoints = parse_etcd_endpoints("http://127.0.0.1:2379,127.0.0.1:2381/");
  ASSERT_TRUE(endpoints.is_ok()) << endpoints.status().to_string();
  ASSERT_EQ(endpoints->size(), 2u);
  EXPECT_EQ((*endpoints)[0].port, 2379);
  EXPECT_EQ((*endpoints)[1].port, 2381);
  EXPECT_FALSE(parse_etcd_endpoints("").is_ok());
  EXPECT_FALSE(parse_etcd_endpoints("127.0.0.1:2379,").is_ok());
  EXPECT_FALSE(parse_etcd_endpoints("127.0.0.1:2379,,127.0.0.1:2381").is_ok());
  EXPECT_FALSE(parse_etcd_endpoints("https://127.0.0.1:2379").is_ok());
  EXPECT_FALSE(parse_etcd_endpoints("http://127.0.0.1").is_ok());
}

TEST(StoredStateTest, TrimsEventsAndHistoryAndParsesBack) {
  State state;
  for (int i = 0; i < 3000; ++i) {
    state.add_event(i, "event " + std::to_string(i));
    state.add_history(i, 0);
  }
  auto parsed = parse_stored_state(stored_state_text(state));
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->events.size(), kEtcdEventsMax);
  EXPECT_EQ(parsed->events.back().message, "event 2999");
  EXPECT_EQ(parsed->history.size(), kEtcdHistoryMax);
  EXPECT_EQ(parsed->next_event_seq, state.next_event_seq);
  EXPECT_FALSE(parse_stored_state("{not json").is_ok());
}

// Stores in memory; refuses every write once `refuse` is set (a deposed leader's fenced txn).
class FakeStore final : public StateStore {
 public:
  Result<State> load() override {
    if (!stored) return Status::not_found("nothing stored");
    return *stored;
  }
  Status save(const State& state) override {
    if (refuse) return Status::busy("leadership lost");
    stored = state;
    ++saves;
    return Status::ok();
  }
  std::optional<State> stored;
  bool refuse = false;
  int saves = 0;
};

class StoreServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    settings_.replication_factor = 1;
    settings_.initial_shards = 1;
    settings_.ranges_per_shard = 2;
    settings_.min_spares = 0;
    settings_.store = store_;
  }
  std::shared_ptr<FakeStore> store_ = std::make_shared<FakeStore>();
  ServiceSettings settings_;
  test::FakeClock clock_;
};

TEST_F(StoreServiceTest, EveryChangeIsStoredBeforeItIsShown) {
  auto service = Service::open(settings_, &clock_);
  ASSERT_TRUE(service.is_ok());
  EXPECT_EQ(store_->saves, 1);  // the start-up event
  ASSERT_TRUE((*service)->register_machine(1, "127.0.0.1:7001", "").is_ok());
  ASSERT_TRUE(store_->stored.has_value());
  ASSERT_TRUE(store_->stored->table.has_value());
  EXPECT_EQ(store_->stored->table->epoch, (*service)->epoch());
  // A heartbeat that changes nothing writes nothing.
  const int saves = store_->saves;
  ASSERT_TRUE((*service)->heartbeat(1, (*service)->epoch(), Load{}).is_ok());
  EXPECT_EQ(store_->saves, saves);
}

TEST_F(StoreServiceTest, ARefusedWritePoisonsTheServiceAndTheApiAnswers503) {
  auto service = Service::open(settings_, &clock_);
  ASSERT_TRUE(service.is_ok());
  ApiRouter router(service->get(), "secret");
  store_->refuse = true;
  ApiRequest request{"POST", "/v1/register", "Bearer secret",
                     R"({"machine_id": 1, "address": "127.0.0.1:7001"})"};
  ApiResponse response = router.handle(request);
  // The register bootstrapped epoch 1 in memory, but it was never stored: not shown.
  EXPECT_EQ(response.status, 503) << response.body;
  EXPECT_TRUE((*service)->poisoned());
  EXPECT_FALSE(store_->stored.has_value() && store_->stored->table.has_value());
  // Rolled back as well: the service holds what the store holds, no machine and no table.
  EXPECT_TRUE((*service)->snapshot().machines.empty());
  EXPECT_FALSE((*service)->snapshot().table.has_value());
  EXPECT_EQ(router.handle(ApiRequest{"GET", "/v1/table", "", ""}).status, 503);
  EXPECT_EQ(router.handle(ApiRequest{"GET", "/v1/status", "", ""}).status, 503);
  // A poisoned service no longer ticks (nothing it computes could be stored).
  const int saves = store_->saves;
  clock_.now_ms += 10'000;
  (*service)->tick();
  EXPECT_EQ(store_->saves, saves);
}

TEST_F(StoreServiceTest, AStoreThatRefusesTheStartUpWriteIsNoLeader) {
  store_->refuse = true;
  auto service = Service::open(settings_, &clock_);
  EXPECT_FALSE(service.is_ok());
}

TEST_F(StoreServiceTest, ANewLeaderGivesMachinesTheTakeoverGrace) {
  {
    auto first = Service::open(settings_, &clock_);
    ASSERT_TRUE(first.is_ok());
    ASSERT_TRUE((*first)->register_machine(1, "127.0.0.1:7001", "").is_ok());
  }
  settings_.takeover_grace_ms = 1000;
  settings_.down_after_ms = 1500;
  settings_.dead_after_ms = 5000;
  auto second = Service::open(settings_, &clock_);
  ASSERT_TRUE(second.is_ok());
  // Silent for down_after_ms: still up, the grace is on top of the detection window.
  clock_.now_ms += 1600;
  (*second)->tick();
  EXPECT_EQ((*second)->snapshot().find_machine(1)->health, Health::kUp);
  clock_.now_ms += 1000;
  (*second)->tick();
  EXPECT_EQ((*second)->snapshot().find_machine(1)->health, Health::kDown);
}

}  // namespace
}  // namespace cairn::orchestrator
