#pragma once
// Fakes shared by the command tests: a Keyspace with a settable clock and nothing stored, a
// ServerControl with a few settings and clients, and a harness that dispatches one command
// through default_table() and returns the raw reply bytes.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/glob.h"
#include "resp/writer.h"

namespace cairn::commands::testing {

class FakeKeyspace final : public coordinator::Keyspace {
 public:
  Result<std::optional<storage::Cell>> read(std::string_view) override {
    return std::optional<storage::Cell>();
  }
  Status write(std::string_view, storage::ValueType, std::string, int64_t) override {
    return Status::ok();
  }
  Status remove(std::string_view) override { return Status::ok(); }
  Status atomically(std::span<const std::string>, const std::function<Status()>& fn) override {
    return fn();
  }
  Result<coordinator::ScanPage> scan(const coordinator::ScanRequest&) override {
    return coordinator::ScanPage{};
  }
  Result<uint64_t> count() override { return uint64_t{0}; }
  Result<std::optional<std::string>> random_key() override {
    return std::optional<std::string>();
  }
  Status clear() override { return Status::ok(); }
  int64_t now_ms() override { return now_ms_; }

  int64_t now_ms_ = 1'700'000'000'123;
};

class FakeServer final : public ServerControl {
 public:
  std::vector<std::pair<std::string, std::string>> config_get(std::string_view pattern) override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& entry : config_) {
      if (glob_match(pattern, entry.first, /*nocase=*/true)) out.push_back(entry);
    }
    return out;
  }
  Status config_set(std::string_view name, std::string_view value) override {
    ++config_set_calls_;
    for (auto& entry : config_) {
      if (entry.first != name) continue;
      if (name == "maxmemory" && value.find_first_not_of("0123456789") != std::string::npos) {
        return Status::invalid_argument("argument must be a memory value");
      }
      entry.second = std::string(value);
      return Status::ok();
    }
    return Status::not_found("no such parameter");
  }
  std::string info(std::string_view section) override {
    info_calls_.emplace_back(section);
    if (section.empty() || section == "server") return "# Server\r\nredis_version:7.0.15\r\n";
    if (section == "clients") return "# Clients\r\nconnected_clients:2\r\n";
    return "";
  }
  std::string client_list() override { return client_list_; }
  std::string client_info(const Session& session) override {
    return "id=" + std::to_string(session.id) + " addr=127.0.0.1:5000 name=" + session.name +
           "\n";
  }
  int kill_client(uint64_t id) override {
    killed_.push_back(id);
    return 1;
  }
  std::string requirepass() override { return requirepass_; }
  void request_shutdown() override { shutdown_requested_ = true; }
  std::string version() override { return "0.1.0"; }

  std::vector<std::pair<std::string, std::string>> config_ = {
      {"maxmemory", "0"}, {"maxclients", "10000"}, {"requirepass", ""}, {"port", "6379"}};
  int config_set_calls_ = 0;
  std::vector<std::string> info_calls_;
  std::string client_list_ =
      "id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 name= cmd=client|list\n"
      "id=8 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 name=other cmd=get\n";
  std::vector<uint64_t> killed_;
  std::string requirepass_;
  bool shutdown_requested_ = false;
};

// Runs commands as one connection would: the session persists between calls.
struct Harness {
  Harness() {
    session.id = 7;
    session.authenticated = true;
  }

  // The raw reply bytes of one command.
  std::string run(std::vector<std::string> args) {
    out.clear();
    resp::ReplyWriter writer(&out, session.protocol);
    CommandContext context{args, writer, session, keyspace, server};
    outcome = dispatch(default_table(), context);
    return out;
  }

  FakeKeyspace keyspace;
  FakeServer server;
  Session session;
  std::string out;
  DispatchOutcome outcome;
};

}  // namespace cairn::commands::testing
