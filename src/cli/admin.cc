#include "cli/admin.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "orchestrator/state.h"
#include "server/http_client.h"
#include "server/orchestrator_client.h"

namespace cairn::cli {

namespace {

using nlohmann::json;

constexpr int kExitFailure = 1;
constexpr uint64_t kTokensInRing = UINT64_MAX;

// ---- formatting helpers: tolerant of absent fields, so an older or newer orchestrator still
// prints something readable ----

std::string text_of(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>().empty() ? "-" : value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_number_float()) return fmt::format("{:.1f}", value.get<double>());
  if (value.is_number()) return value.dump();
  if (value.is_array()) {
    if (value.empty()) return "-";
    std::string out;
    for (const json& item : value) out += (out.empty() ? "" : ",") + text_of(item);
    return out;
  }
  return value.dump();
}

// object[name], or null when `object` is not an object or has no such member.
json member(const json& object, const char* name) {
  if (!object.is_object()) return json();
  auto it = object.find(name);
  return it == object.end() ? json() : *it;
}

std::string field(const json& object, const char* name) {
  if (!object.is_object()) return "-";
  auto it = object.find(name);
  return it == object.end() ? "-" : text_of(*it);
}

std::string ops_of(const json& object) {
  if (!object.is_object() || !object.contains("load")) return "-";
  const json& load = object["load"];
  if (!load.is_object() || !load.contains("ops_per_sec") || !load["ops_per_sec"].is_number()) {
    return "-";
  }
  return fmt::format("{:.0f}", load["ops_per_sec"].get<double>());
}

std::string ago(const json& object) {
  if (!object.is_object() || !object.contains("last_heartbeat_ms_ago")) return "-";
  const json& value = object["last_heartbeat_ms_ago"];
  if (!value.is_number() || value.get<double>() < 0) return "never";
  const double ms = value.get<double>();
  if (ms < 1000) return fmt::format("{:.0f}ms ago", ms);
  if (ms < 120'000) return fmt::format("{:.1f}s ago", ms / 1000);
  return fmt::format("{:.0f}m ago", ms / 60'000);
}

std::string local_time(const json& value) {
  if (!value.is_number()) return "-";
  const int64_t ms = value.get<int64_t>();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm parts{};
  localtime_r(&seconds, &parts);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%S", &parts);
  return fmt::format("{}.{:03}", buffer, ms % 1000);
}

// Prints rows under a header, every column but the last padded to its widest cell.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size()) {
        line += row[i];
      } else {
        line += row[i] + std::string(widths[i] - row[i].size() + 2, ' ');
      }
    }
    out << line << "\n";
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
  if (rows.empty()) out << "(none)\n";
}

void print_status(std::ostream& out, const json& status) {
  const json machines = member(status, "machines");
  const std::vector<std::pair<std::string, std::string>> lines = {
      {"bootstrapped", field(status, "bootstrapped")},
      {"epoch", field(status, "epoch")},
      {"replication factor", field(status, "replication_factor")},
      {"shards", field(status, "shards")},
      {"machines", fmt::format("{} total: {} up, {} down, {} dead, {} spare",
                               field(machines, "total"), field(machines, "up"),
                               field(machines, "down"), field(machines, "dead"),
                               field(machines, "spare"))},
      {"spares target", fmt::format("{} (average down {})", field(status, "spares_target"),
                                    field(status, "average_down"))},
  };
  for (const auto& [name, value] : lines) out << fmt::format("{:<20}{}\n", name + ":", value);
  // Several orchestrators on etcd (docs/orchestrator-ha.md): who leads, since when, etcd health.
  const json orchestrators = member(status, "orchestrators");
  if (!orchestrators.is_object()) return;
  std::string since = "-";
  const json since_ms = member(orchestrators, "leader_since_ms");
  if (since_ms.is_number_integer() && since_ms.get<int64_t>() > 0) {
    const std::time_t seconds = static_cast<std::time_t>(since_ms.get<int64_t>() / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
    since = text;
  }
  out << fmt::format("{:<20}{} (since {})\n", "leader:", field(orchestrators, "leader"), since);
  out << fmt::format("{:<20}{} is {}\n", "this orchestrator:", field(orchestrators, "self"),
                     field(orchestrators, "role"));
  for (const json& etcd : member(orchestrators, "etcd")) {
    out << fmt::format("{:<20}{} {} {}{}\n", "etcd member:", field(etcd, "name"),
                       field(etcd, "client_url"),
                       member(etcd, "healthy") == true ? "healthy" : "UNHEALTHY",
                       member(etcd, "leader") == true ? " (raft leader)" : "");
  }
}

// A machine's clock against the orchestrator's: "+12ms" (ahead), "-3ms" (behind), "OFF +3600004ms"
// past the bound (the machine coordinates no writes), "-" before the first measurement.
std::string clock_of(const json& machine) {
  const json clock = member(machine, "clock");
  if (!clock.is_object()) return "-";
  const int64_t ahead = -clock.value("offset_ms", int64_t{0});
  return fmt::format("{}{}{}ms", clock.value("in_bound", true) ? "" : "OFF ",
                     ahead >= 0 ? "+" : "", ahead);
}

void print_machines(std::ostream& out, const json& machines) {
  std::vector<std::vector<std::string>> rows;
  for (const json& machine : machines) {
    // Shard 0 is "none" (a spare or a machine not yet placed).
    const std::string shard = field(machine, "shard");
    rows.push_back({field(machine, "id"), field(machine, "address"), field(machine, "state"),
                    field(machine, "health"), shard == "0" ? "-" : shard, field(machine, "role"),
                    ops_of(machine), clock_of(machine), ago(machine)});
  }
  print_table(out,
              {"ID", "ADDRESS", "STATE", "HEALTH", "SHARD", "ROLE", "OPS/S", "CLOCK",
               "LAST-HEARTBEAT"},
              rows);
}

void print_shards(std::ostream& out, const json& shards) {
  std::vector<std::vector<std::string>> rows;
  for (const json& shard : shards) {
    rows.push_back({field(shard, "id"), field(shard, "leader"), field(shard, "replicas"),
                    field(shard, "extras"), field(shard, "joining"), field(shard, "ranges"),
                    ops_of(shard)});
  }
  print_table(out, {"SHARD", "LEADER", "REPLICAS", "EXTRAS", "JOINING", "RANGES", "OPS/S"}, rows);
}

// Seconds as "12s", "5m", "3h" ("never" for null).
std::string age_text(const json& seconds) {
  if (!seconds.is_number()) return "never";
  const int64_t s = seconds.get<int64_t>();
  if (s < 120) return fmt::format("{}s ago", s);
  if (s < 7200) return fmt::format("{}m ago", s / 60);
  return fmt::format("{}h ago", s / 3600);
}

// GET /v1/repair: one row per shard, then what each replica reported.
void print_repair(std::ostream& out, const json& shards) {
  std::vector<std::vector<std::string>> rows;
  for (const json& shard : shards) {
    std::string replicas;
    for (const json& replica : member(shard, "replicas")) {
      if (!replicas.empty()) replicas += "  ";
      replicas += field(replica, "machine") + ":";
      if (!member(replica, "reported").is_boolean() || !replica["reported"].get<bool>()) {
        replicas += "no report";
        continue;
      }
      const json last = member(replica, "last_full_ms");
      replicas += last.is_number() && last.get<int64_t>() != 0 ? local_time(last).substr(11, 8)
                                                                : "never";
      if (member(replica, "running").is_boolean() && replica["running"].get<bool>()) {
        replicas += fmt::format(" (comparing {:.0f}%)",
                                100 * member(replica, "progress").get<double>());
      } else if (!field(replica, "problem").empty() && field(replica, "problem") != "-") {
        replicas += " (incomplete: " + field(replica, "problem") + ")";
      }
    }
    rows.push_back({field(shard, "shard"), age_text(member(shard, "last_full_age_s")),
                    field(shard, "last_pass_fixed"), field(shard, "cells_fixed"), replicas});
  }
  print_table(out, {"SHARD", "LAST-FULL-COMPARE", "FIXED-LAST-PASS", "FIXED-TOTAL",
                    "REPLICAS (machine:last full compare)"},
              rows);
}

// A token written as "0x..." (or a plain number); nullopt if neither.
std::optional<uint64_t> token_of(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (!value.is_string()) return std::nullopt;
  const std::string text = value.get<std::string>();
  try {
    size_t used = 0;
    const uint64_t token = std::stoull(text, &used, 0);
    if (used == text.size()) return token;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

void print_ring(std::ostream& out, const json& ranges) {
  std::vector<std::vector<std::string>> rows;
  for (const json& range : ranges) {
    std::string share = "-";
    const auto start = token_of(member(range, "start"));
    const auto end = token_of(member(range, "end"));
    if (start && end) {
      // An end of 0 stands for 2^64 (the range reaching the end of the ring).
      const uint64_t size = *end == 0 ? (0 - *start) : *end - *start;
      const double fraction = (*start == 0 && *end == 0) ? 1.0
                                                         : static_cast<double>(size) /
                                                               static_cast<double>(kTokensInRing);
      share = fmt::format("{:.2f}%", fraction * 100);
    }
    rows.push_back({field(range, "start"), field(range, "end"), field(range, "shard"), share});
  }
  print_table(out, {"START", "END", "SHARD", "SHARE"}, rows);
}

void print_events(std::ostream& out, const json& events) {
  std::vector<std::vector<std::string>> rows;
  for (const json& event : events) {
    rows.push_back({field(event, "seq"), local_time(member(event, "time_ms")),
                    field(event, "message")});
  }
  print_table(out, {"SEQ", "TIME", "MESSAGE"}, rows);
}

std::string bytes_text(const json& value) {
  if (!value.is_number()) return "-";
  const double b = value.get<double>();
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.1f}GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.1f}MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.1f}KiB", b / 1024.0);
  return fmt::format("{:.0f}B", b);
}

std::string eta_text(const json& value) {
  if (!value.is_number()) return "-";
  const double s = value.get<double>();
  if (s < 120) return fmt::format("{:.0f}s", s);
  if (s < 7200) return fmt::format("{:.0f}m", s / 60);
  return fmt::format("{:.1f}h", s / 3600);
}

void print_migrations(std::ostream& out, const json& migrations) {
  std::vector<std::vector<std::string>> rows;
  for (const json& m : migrations) {
    std::string phase = field(m, "phase");
    if (member(m, "paused").is_boolean() && member(m, "paused").get<bool>()) phase += " (paused)";
    const json fence = member(m, "fence_ms_last");
    rows.push_back({field(m, "id"), field(m, "kind"),
                    fmt::format("[{}, {})", field(m, "start"), field(m, "end")),
                    fmt::format("{}->{}", field(m, "source"), field(m, "target")), phase,
                    field(m, "keys"), bytes_text(member(m, "bytes")), field(m, "lag"),
                    bytes_text(member(m, "rate")) + "/s", eta_text(member(m, "eta_s")),
                    fence.is_number() && fence.get<double>() > 0
                        ? fmt::format("{} (max {})", text_of(fence), field(m, "fence_ms_max"))
                        : "-",
                    field(m, "error")});
  }
  print_table(out, {"ID", "KIND", "RANGE", "SHARDS", "PHASE", "KEYS", "COPIED", "LAG", "RATE",
                    "ETA", "FENCE-MS", "ERROR"},
              rows);
}

std::string per_sec_text(const json& value) {
  if (!value.is_number()) return "-";
  const double v = value.get<double>();
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

std::string micros_text(const json& value) {
  if (!value.is_number()) return "-";
  const double us = value.get<double>();
  if (us >= 1e6) return fmt::format("{:.2f}s", us / 1e6);
  if (us >= 1e3) return fmt::format("{:.1f}ms", us / 1e3);
  return fmt::format("{:.0f}us", us);
}

std::string hottest_text(const json& load) {
  const json keys = member(load, "top_keys");
  if (!keys.is_array() || keys.empty()) return "-";
  return fmt::format("{} ({})", field(keys[0], "key"), field(keys[0], "count"));
}

std::vector<std::string> load_columns(const json& load) {
  return {per_sec_text(member(load, "reads_per_sec")), per_sec_text(member(load, "writes_per_sec")),
          bytes_text(member(load, "bytes_in_per_sec")) + "/s",
          bytes_text(member(load, "bytes_out_per_sec")) + "/s", field(load, "keys"),
          bytes_text(member(load, "bytes")), micros_text(member(load, "p50_us")),
          micros_text(member(load, "p99_us")), micros_text(member(load, "p999_us")),
          hottest_text(load)};
}

std::string days_text(const json& value) {
  return value.is_number() ? fmt::format("{:.1f}", value.get<double>()) : "-";
}

// `cairn admin capacity`: the recommendation, then one row per shard and the cluster's.
void print_capacity(std::ostream& out, const json& capacity) {
  out << field(capacity, "recommendation") << "\n";
  out << fmt::format("budgets per machine: disk {}, ops {}/s; horizon {} days\n",
                     bytes_text(member(capacity, "machine_disk_budget_bytes")),
                     per_sec_text(member(capacity, "machine_ops_budget")),
                     field(capacity, "horizon_days"));
  std::vector<std::vector<std::string>> rows;
  auto row = [](std::string name, const json& s) {
    return std::vector<std::string>{
        std::move(name),
        bytes_text(member(s, "bytes")),
        bytes_text(member(s, "bytes_per_day")) + "/day",
        per_sec_text(member(s, "machine_ops_per_sec")),
        per_sec_text(member(s, "ops_per_day")) + "/day",
        days_text(member(s, "days_to_disk_budget")),
        days_text(member(s, "days_to_ops_budget"))};
  };
  for (const json& s : member(capacity, "shards")) rows.push_back(row(field(s, "shard"), s));
  rows.push_back(row("all", member(capacity, "cluster")));
  print_table(out, {"SHARD", "STORED", "GROWTH", "OPS/S PER MACHINE", "GROWTH", "DAYS TO DISK",
                    "DAYS TO OPS"},
              rows);
}

// The "hot" part of /v1/load: hot shards (and those within their window), hot keys, splits
// held back and ranges pinned after a split.
void print_hot(std::ostream& out, const json& hot) {
  if (!hot.is_object()) return;
  const json settings = member(hot, "settings");
  out << fmt::format("hot shards: above {} ops/s and {}x the median for {} s (cool-down {} s)\n",
                     field(settings, "shard_ops"), field(settings, "factor"),
                     field(settings, "window_s"), field(settings, "cooldown_s"));
  const json shards = member(hot, "shards");
  if (!shards.is_array() || shards.empty()) out << "  none\n";
  for (const json& s : shards) {
    const bool is_hot = member(s, "hot").is_boolean() && member(s, "hot").get<bool>();
    const bool cooling = member(s, "cooling").is_boolean() && member(s, "cooling").get<bool>();
    out << fmt::format("  shard {}: {} ops/s (median {}), over the line for {} s{}{}\n",
                       field(s, "shard"), per_sec_text(member(s, "ops_per_sec")),
                       per_sec_text(member(s, "median_ops_per_sec")), field(s, "over_for_s"),
                       is_hot ? ": HOT" : " (within the window)",
                       cooling ? ", cooling down after a split" : "");
  }
  for (const json& k : member(hot, "hot_keys")) {
    out << fmt::format("  hot key \"{}\" on shard {}: {} ops/s, {:.0f} % of its range's sample "
                       "(not split: one key cannot be)\n",
                       field(k, "key"), field(k, "shard"), per_sec_text(member(k, "ops_per_sec")),
                       member(k, "share").is_number() ? member(k, "share").get<double>() * 100
                                                      : 0.0);
  }
  for (const json& h : member(hot, "held")) {
    out << fmt::format("  shard {} not split: {}\n", field(h, "shard"), field(h, "why"));
  }
  for (const json& p : member(hot, "pinned")) {
    out << fmt::format("  [{}, {}) pinned for {} s more (moved by a hot split)\n",
                       field(p, "start"), field(p, "end"), field(p, "for_s"));
  }
}

// `cairn admin load`: one row per shard (and, with --ranges, one per range under it), then the
// hottest keys of each shard.
void print_load(std::ostream& out, const json& load, bool ranges) {
  std::vector<std::vector<std::string>> rows;
  for (const json& shard : member(load, "shards")) {
    std::vector<std::string> row = {field(shard, "shard"), "all"};
    for (std::string& column : load_columns(shard)) row.push_back(std::move(column));
    rows.push_back(std::move(row));
    if (!ranges) continue;
    for (const json& range : member(shard, "ranges")) {
      std::vector<std::string> range_row = {
          "", fmt::format("[{}, {})", field(range, "start"), field(range, "end"))};
      for (std::string& column : load_columns(range)) range_row.push_back(std::move(column));
      rows.push_back(std::move(range_row));
    }
  }
  out << fmt::format("load over the last {} s (reads: replica reads; writes: per replica)\n",
                     field(load, "window_s"));
  print_table(out, {"SHARD", "RANGE", "READS/S", "WRITES/S", "IN", "OUT", "KEYS", "STORED", "P50",
                    "P99", "P999", "HOTTEST"},
              rows);
  for (const json& shard : member(load, "shards")) {
    const json keys = member(shard, "top_keys");
    if (!keys.is_array() || keys.empty()) continue;
    std::string line;
    for (const json& key : keys) {
      line += fmt::format("{}{} ({})", line.empty() ? "" : ", ", field(key, "key"),
                          field(key, "count"));
    }
    out << fmt::format("shard {} hottest keys: {}\n", field(shard, "shard"), line);
  }
  print_hot(out, member(load, "hot"));
}

// The body of POST /v1/migrations for split/move, or the reason it cannot be built.
std::optional<json> creation_body(const AdminOptions& options, std::ostream& err) {
  json body;
  if (!options.rate.empty()) {
    auto rate = parse_rate(options.rate);
    if (!rate) {
      err << "cairn admin: --max-rate \"" << options.rate << "\" is not a rate (e.g. 50MB)\n";
      return std::nullopt;
    }
    body["max_rate"] = *rate;
  }
  if (options.command == "split") {
    body["kind"] = "split";
    body["shard"] = options.shard;
    if (!options.at.empty()) {
      auto at = orchestrator::parse_token(options.at);
      if (!at.is_ok()) {
        err << "cairn admin: --at " << at.status().message() << "\n";
        return std::nullopt;
      }
      body["at"] = topology::format_token(*at);
    }
    return body;
  }
  body["kind"] = "move";
  body["to"] = options.shard;
  const std::string& range = options.range;
  const size_t dash = range.find('-');
  auto start = orchestrator::parse_token(range.substr(0, dash));
  if (!start.is_ok()) {
    err << "cairn admin: RANGE must be 0xSTART-0xEND or 0xSTART: " << start.status().message()
        << "\n";
    return std::nullopt;
  }
  body["start"] = topology::format_token(*start);
  if (dash != std::string::npos) {
    auto end = orchestrator::parse_token(range.substr(dash + 1));
    if (!end.is_ok()) {
      err << "cairn admin: RANGE end: " << end.status().message() << "\n";
      return std::nullopt;
    }
    body["end"] = topology::format_token(*end);
  }
  return body;
}

std::string resolve_secret(const AdminOptions& options) {
  if (!options.cluster_secret.empty()) return options.cluster_secret;
  if (const char* env = std::getenv("CAIRN_CLUSTER_SECRET"); env != nullptr && *env != '\0') {
    return env;
  }
  std::ifstream file(options.secret_file);
  std::string secret;
  if (file) std::getline(file, secret);
  return secret;
}

}  // namespace

std::optional<uint64_t> parse_rate(std::string_view text) {
  if (text.ends_with("/s")) text.remove_suffix(2);
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) ||
                                  text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  double number = 0;
  try {
    size_t used = 0;
    number = std::stod(std::string(text.substr(0, digits)), &used);
    if (used != digits) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit(text.substr(digits));
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (unit.ends_with("b") && unit != "b") unit.pop_back();  // "mb" → "m", "mib" → "mi"
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  if (unit == "k") scale = 1e3;
  if (unit == "m") scale = 1e6;
  if (unit == "g") scale = 1e9;
  if (unit == "ki") scale = 1024.0;
  if (unit == "mi") scale = 1024.0 * 1024;
  if (unit == "gi") scale = 1024.0 * 1024 * 1024;
  if (scale == 0) return std::nullopt;
  const double bytes = number * scale;
  if (bytes < 0 || bytes >= 1.8e19) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

CLI::App* add_admin_command(CLI::App& app, AdminOptions& options) {
  CLI::App* admin =
      app.add_subcommand("admin", "inspect and change a cluster through its orchestrator");
  admin->add_option("--orchestrator", options.orchestrator,
                    "host:port of the orchestrator's API, or several comma-separated (changes go "
                    "to the one that leads)  [default: 127.0.0.1:7700]");
  admin->add_flag("--json", options.json, "print the API's JSON as is");
  admin->add_option("--cluster-secret", options.cluster_secret,
                    "secret for drain/remove  [default: $CAIRN_CLUSTER_SECRET, else the file "
                    "./cairn-data/secret]");
  admin->add_option("--timeout-ms", options.timeout_ms, "give up after this long  [default: 3000]")
      ->check(CLI::Range(1, 600'000));
  admin->require_subcommand(1);
  struct Read {
    const char* name;
    const char* help;
  };
  for (const Read& read : {Read{"status", "cluster summary: epoch, machines by state, shards"},
                           Read{"machines", "every machine: address, state, shard, role, load"},
                           Read{"shards", "every shard: leader, replicas, extras, ranges, load"},
                           Read{"ring", "the token ranges and the shard owning each"},
                           Read{"repair", "anti-entropy repair per shard: when its replicas "
                                          "were last fully compared, cells fixed"},
                           Read{"capacity", "growth of bytes and ops per shard, days to the "
                                            "machines' budgets, machines to add and by when"}}) {
    admin->add_subcommand(read.name, read.help)->callback([&options, name = read.name] {
      options.command = name;
    });
  }
  CLI::App* load = admin->add_subcommand(
      "load", "load per shard over the last 10 s: reads/s, writes/s, bytes, keys, latency, "
              "hottest keys");
  load->add_flag("--ranges", options.ranges, "one row per token range under each shard");
  load->add_flag("--history", options.history, "with --json: the per-second and per-minute history");
  load->callback([&options] { options.command = "load"; });
  CLI::App* events = admin->add_subcommand("events", "the orchestrator's recent events");
  events->add_option("--since", options.since, "only events after this sequence number");
  events->callback([&options] { options.command = "events"; });
  for (const char* name : {"drain", "remove"}) {
    CLI::App* sub = admin->add_subcommand(
        name, std::string(name) == "drain"
                  ? "move a machine's data and roles to others before it leaves"
                  : "forget a machine (it must hold no role)");
    sub->add_option("id", options.machine_id, "machine id")->required();
    sub->callback([&options, name] { options.command = name; });
  }
  CLI::App* migrations = admin->add_subcommand(
      "migrations", "data migrations: id, range, shards, phase, progress, rate, ETA, fence");
  migrations->callback([&options] {
    if (options.command.empty()) options.command = "migrations";
  });
  migrations->require_subcommand(0, 1);
  migrations->fallthrough();  // `cairn admin migrations --json` as well as `admin --json ...`
  for (const char* name : {"pause", "resume", "cancel"}) {
    CLI::App* sub = migrations->add_subcommand(name, std::string(name) + " a migration");
    sub->add_option("id", options.migration_id, "migration id")->required();
    sub->callback([&options, name] { options.command = std::string("migrations-") + name; });
    sub->fallthrough();
  }
  CLI::App* rate = migrations->add_subcommand(
      "rate", "change a migration's copy rate per target machine (0 = the default)");
  rate->add_option("id", options.migration_id, "migration id")->required();
  rate->add_option("bytes_per_sec", options.rate, "e.g. 50MB, 1GiB, 0")->required();
  rate->callback([&options] { options.command = "migrations-rate"; });
  rate->fallthrough();
  CLI::App* split = admin->add_subcommand(
      "split", "new shard from free machines taking half of SHARD's ring (or from --at on)");
  split->add_option("shard", options.shard, "shard id")->required();
  split->add_option("--at", options.at, "token (0x...) where the moved part begins");
  split->add_option("--max-rate", options.rate, "copy rate per target machine, e.g. 50MB");
  split->callback([&options] { options.command = "split"; });
  split->fallthrough();
  CLI::App* move = admin->add_subcommand("move", "move a token range to another shard");
  move->add_option("range", options.range, "0xSTART-0xEND, or 0xSTART naming a table range")
      ->required();
  move->add_option("--to", options.shard, "target shard id")->required();
  move->add_option("--max-rate", options.rate, "copy rate per target machine, e.g. 50MB");
  move->callback([&options] { options.command = "move"; });
  // Options of `admin` (--json, --orchestrator, ...) are accepted after any subcommand too:
  // `cairn admin machines --json` as well as `cairn admin --json machines`.
  std::vector<CLI::App*> pending = admin->get_subcommands({});
  while (!pending.empty()) {
    CLI::App* sub = pending.back();
    pending.pop_back();
    sub->fallthrough();
    for (CLI::App* nested : sub->get_subcommands({})) pending.push_back(nested);
  }
  return admin;
}

int run_admin(const AdminOptions& options, std::ostream& out, std::ostream& err) {
  auto endpoints = server::parse_orchestrator_list(options.orchestrator);
  if (!endpoints.is_ok()) {
    err << "cairn admin: --orchestrator " << endpoints.status().message() << "\n";
    return kExitFailure;
  }
  // Several orchestrators: changes go to the leader, reads to whichever answers first.
  const server::OrchestratorClient client(std::move(*endpoints));
  server::HttpRequest request;
  const bool machine_action = options.command == "drain" || options.command == "remove";
  const bool migration_action = options.command.starts_with("migrations-");
  const bool creation = options.command == "split" || options.command == "move";
  const bool mutating = machine_action || migration_action || creation;
  if (mutating) {
    request.method = "POST";
    request.bearer = resolve_secret(options);
    if (request.bearer.empty()) {
      err << "cairn admin: " << options.command
          << " needs the cluster secret: pass --cluster-secret or set CAIRN_CLUSTER_SECRET\n";
      return kExitFailure;
    }
  }
  if (machine_action) {
    request.target = fmt::format("/v1/machines/{}/{}", options.machine_id, options.command);
  } else if (migration_action) {
    const std::string action = options.command.substr(std::string("migrations-").size());
    request.target = fmt::format("/v1/migrations/{}/{}", options.migration_id, action);
    json body = json::object();
    if (action == "rate") {
      auto rate = parse_rate(options.rate);
      if (!rate) {
        err << "cairn admin: \"" << options.rate << "\" is not a rate (e.g. 50MB, 1GiB, 0)\n";
        return kExitFailure;
      }
      body["max_rate"] = *rate;
    }
    request.body = body.dump();
  } else if (creation) {
    auto body = creation_body(options, err);
    if (!body) return kExitFailure;
    request.target = "/v1/migrations";
    request.body = body->dump();
  } else if (options.command == "events") {
    request.target = fmt::format("/v1/events?since={}", options.since);
  } else if (options.command == "load") {
    request.target = options.history ? "/v1/load?history=1" : "/v1/load";
  } else {
    request.target = "/v1/" + options.command;
  }

  auto response = client.call(request, options.timeout_ms);
  if (!response.is_ok()) {
    err << "cairn admin: the orchestrator at " << options.orchestrator
        << " is unreachable (is `cairn orchestrator` or `cairn dev` running?): "
        << response.status().message() << "\n";
    return kExitFailure;
  }
  const json body = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (response->status != 200 && !(creation && response->status == 201)) {
    std::string reason = fmt::format("HTTP {}", response->status);
    if (body.is_object() && body.contains("error")) reason += ": " + text_of(body["error"]);
    if (response->status == 404 && options.command == "ring") {
      reason += " (the cluster has no routing table yet)";
    }
    std::string command = options.command;
    std::replace(command.begin(), command.end(), '-', ' ');  // "migrations-cancel"
    err << "cairn admin " << command << ": " << reason << "\n";
    return kExitFailure;
  }
  if (body.is_discarded()) {
    err << "cairn admin: the orchestrator's answer is not JSON\n";
    return kExitFailure;
  }
  if (options.json) {
    out << response->body;
    if (!response->body.ends_with('\n')) out << "\n";
    return 0;
  }
  if (machine_action) {
    out << fmt::format("machine {}: {} requested\n", options.machine_id, options.command);
    return 0;
  }
  if (migration_action) {
    out << fmt::format("migration {}: {} done\n", options.migration_id,
                       options.command.substr(std::string("migrations-").size()));
    return 0;
  }
  if (creation) {
    out << field(body, "message") << "\n";
    return 0;
  }
  if (options.command == "load") {
    print_load(out, body, options.ranges);
    return 0;
  }
  if (options.command == "capacity") {
    print_capacity(out, body);
    return 0;
  }
  const bool list = options.command != "status";
  if (list != body.is_array()) {
    err << "cairn admin: unexpected answer from the orchestrator: " << response->body << "\n";
    return kExitFailure;
  }
  if (options.command == "status") print_status(out, body);
  if (options.command == "machines") print_machines(out, body);
  if (options.command == "shards") print_shards(out, body);
  if (options.command == "ring") print_ring(out, body);
  if (options.command == "repair") print_repair(out, body);
  if (options.command == "events") print_events(out, body);
  if (options.command == "migrations") print_migrations(out, body);
  return 0;
}

}  // namespace cairn::cli
