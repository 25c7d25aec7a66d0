#pragma once
// Test fixture for the data command handlers (cmd_string, cmd_keys): a real LocalKeyspace over a
// RocksDB engine in a fresh temporary directory, with a fake wall clock the test moves by hand.
// run() calls the handler straight from the table (with the arity check dispatch() would make) and
// returns the raw RESP bytes written.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands/command.h"
#include "common/hlc.h"
#include "coordinator/local_keyspace.h"
#include "storage/engine.h"

namespace cairn::commands::testing {

inline std::string bulk(std::string_view value) {
  return "$" + std::to_string(value.size()) + "\r\n" + std::string(value) + "\r\n";
}
inline std::string integer(int64_t value) { return ":" + std::to_string(value) + "\r\n"; }
inline std::string error(std::string_view message) { return "-" + std::string(message) + "\r\n"; }
inline const std::string kOk = "+OK\r\n";
inline const std::string kNull = "$-1\r\n";

class NullServerControl : public ServerControl {
 public:
  std::vector<std::pair<std::string, std::string>> config_get(std::string_view) override {
    return {};
  }
  Status config_set(std::string_view, std::string_view) override { return Status::ok(); }
  std::string info(std::string_view) override { return {}; }
  std::string client_list() override { return {}; }
  std::string client_info(const Session&) override { return {}; }
  int kill_client(uint64_t) override { return 0; }
  std::string requirepass() override { return {}; }
  void request_shutdown() override {}
  std::string version() override { return "7.0.15"; }
};

// A command and the raw reply redis-server 7.0.15 gave to it.
struct Step {
  std::vector<std::string> args;
  std::string reply;
};

// Steps that run in order from an empty keyspace.
struct Scenario {
  const char* name;
  std::vector<Step> steps;
};

class DataCommandTest : public ::testing::Test {
 protected:
  // A fixed, realistic "now" so TTL arithmetic is exact.
  static constexpr int64_t kStartMs = 1'700'000'000'000;

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = std::filesystem::temp_directory_path() /
                 (std::string("cairn-data-") + info->test_suite_name() + "-" + info->name() + "-" +
                  std::to_string(::getpid()));
    std::filesystem::remove_all(directory_);
    storage::EngineOptions options;
    options.path = directory_.string();
    options.durability = storage::Durability::kNone;
    options.wall_clock_ms = [this] { return now_ms_.load(); };
    auto engine = storage::Engine::open(options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
    clock_ = std::make_unique<HybridClock>([this] { return now_ms_.load(); });
    keyspace_ = std::make_unique<coordinator::LocalKeyspace>(*engine_, *clock_, 7,
                                                             [this] { return now_ms_.load(); });
    register_string_commands(table_);
    register_key_commands(table_);
  }

  void TearDown() override {
    keyspace_.reset();
    engine_.reset();
    std::filesystem::remove_all(directory_);
  }

  std::string run(std::vector<std::string> args, int protocol = 2) {
    std::string out;
    resp::ReplyWriter writer(&out, protocol);
    const CommandSpec* spec = table_.find(args.at(0));
    if (spec == nullptr) {
      ADD_FAILURE() << "unknown command " << args[0];
      return out;
    }
    if (spec != nullptr && !spec->subcommands.empty() && args.size() >= 2) {
      const CommandSpec* sub = table_.find_subcommand(*spec, args[1]);
      if (sub == nullptr) {
        std::string name = args[0];
        for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        writer.error("ERR unknown subcommand '" + args[1] + "'. Try " + name + " HELP.");
        return out;
      }
      spec = sub;
    }
    const auto argc = static_cast<int>(args.size());
    if ((spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity)) {
      writer.error("ERR wrong number of arguments for '" + spec->name + "' command");
      return out;
    }
    Session session = session_;
    coordinator::Keyspace& keyspace = keyspace_override_ ? *keyspace_override_ : *keyspace_;
    CommandContext context{args, writer, session, keyspace, server_};
    spec->handler(context);
    session_.block = std::move(session.block);
    return out;
  }

  void advance_ms(int64_t ms) { now_ms_ += ms; }

  // Runs every scenario from an empty keyspace; each reply must equal the recorded one byte for
  // byte.
  void expect_recorded_replies(const std::vector<Scenario>& scenarios) {
    for (const Scenario& scenario : scenarios) {
      SCOPED_TRACE(scenario.name);
      ASSERT_TRUE(keyspace_->clear().is_ok());
      for (const Step& step : scenario.steps) {
        std::string command;
        for (const std::string& arg : step.args) command += arg + " ";
        EXPECT_EQ(run(step.args), step.reply) << command;
      }
    }
  }

  std::atomic<int64_t> now_ms_{kStartMs};
  std::filesystem::path directory_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<HybridClock> clock_;
  std::unique_ptr<coordinator::LocalKeyspace> keyspace_;
  // When set, handlers run against this keyspace instead (e.g. a wrapper injecting other types).
  coordinator::Keyspace* keyspace_override_ = nullptr;
  NullServerControl server_;
  CommandTable table_;
  // The connection state each run() starts from; a blocking command's request to wait is
  // copied back into it.
  Session session_;
};

// A DataCommandTest with the row families (hashes, sets, sorted sets) registered too.
class RowCommandTest : public DataCommandTest {
 protected:
  void SetUp() override {
    DataCommandTest::SetUp();
    register_hash_commands(table_);
    register_set_commands(table_);
    register_zset_commands(table_);
  }
};

}  // namespace cairn::commands::testing
