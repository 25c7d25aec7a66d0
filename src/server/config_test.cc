#include "server/config.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>

namespace cairn::server {
namespace {

TEST(ConfigTest, DefaultsMatchTheHandbook) {
  ServerConfig config;
  EXPECT_EQ(config.port, 6380);
  EXPECT_EQ(config.bind, "127.0.0.1");
  EXPECT_EQ(config.data_dir, "./cairn-data");
  EXPECT_EQ(config.durability, storage::Durability::kAlways);
  EXPECT_EQ(config.maxclients, 10000);
  EXPECT_EQ(config.timeout_seconds, 0);
  EXPECT_EQ(config.proto_max_bulk_len, 512 * kMiB);
  EXPECT_EQ(config.client_query_buffer_limit, 1 * kGiB);
  EXPECT_GE(effective_threads(config), 1u);
  EXPECT_LE(effective_threads(config), 64u);
}

TEST(ConfigTest, ParsesMemoryUnitsAsRedisDoes) {
  EXPECT_EQ(*parse_memory("1024"), 1024u);
  EXPECT_EQ(*parse_memory("64k"), 64000u);
  EXPECT_EQ(*parse_memory("64kb"), 65536u);
  EXPECT_EQ(*parse_memory("512MB"), 512 * kMiB);
  EXPECT_EQ(*parse_memory("1gb"), kGiB);
  EXPECT_FALSE(parse_memory("").is_ok());
  EXPECT_FALSE(parse_memory("mb").is_ok());
  EXPECT_FALSE(parse_memory("12tb").is_ok());
  EXPECT_FALSE(parse_memory("99999999999999999999gb").is_ok());
}

TEST(ConfigTest, TomlSetsEveryKnownKey) {
  ServerConfig config;
  const Status status = apply_toml(R"(
port = 7001
bind = "0.0.0.0"
data_dir = "/tmp/x"
durability = "batch"
requirepass = "secret"
maxclients = 50
timeout = 30
threads = 4
proto-max-bulk-len = "2mb"
client_query_buffer_limit = 4194304
log-level = "warning"
)",
                                   "test.toml", config);
  ASSERT_TRUE(status.is_ok()) << status.to_string();
  EXPECT_EQ(config.port, 7001);
  EXPECT_EQ(config.bind, "0.0.0.0");
  EXPECT_EQ(config.data_dir, "/tmp/x");
  EXPECT_EQ(config.durability, storage::Durability::kBatch);
  EXPECT_EQ(config.requirepass, "secret");
  EXPECT_EQ(config.maxclients, 50);
  EXPECT_EQ(config.timeout_seconds, 30);
  EXPECT_EQ(config.threads, 4u);
  EXPECT_EQ(config.proto_max_bulk_len, 2 * kMiB);
  EXPECT_EQ(config.client_query_buffer_limit, 4 * kMiB);
  EXPECT_EQ(config.log_level, "warn");
}

TEST(ConfigTest, TomlErrorsAreReportedNotIgnored) {
  ServerConfig config;
  Status status = apply_toml("prot = 1\n", "a.toml", config);
  EXPECT_FALSE(status.is_ok());
  EXPECT_NE(status.message().find("unknown setting 'prot'"), std::string::npos);

  status = apply_toml("port = 70000\n", "a.toml", config);
  EXPECT_NE(status.message().find("port"), std::string::npos) << status.message();

  status = apply_toml("durability = \"sometimes\"\n", "a.toml", config);
  EXPECT_NE(status.message().find("always, batch or none"), std::string::npos);

  status = apply_toml("port = [1]\n", "a.toml", config);
  EXPECT_NE(status.message().find("string or an integer"), std::string::npos);

  status = apply_toml("port = \n", "b.toml", config);
  EXPECT_FALSE(status.is_ok());
  EXPECT_EQ(status.message().rfind("b.toml:1:", 0), 0u) << status.message();

  EXPECT_FALSE(apply_toml("threads = 65\n", "a.toml", config).is_ok());
  EXPECT_FALSE(apply_toml("maxclients = 0\n", "a.toml", config).is_ok());
  EXPECT_FALSE(apply_toml("proto_max_bulk_len = \"1kb\"\n", "a.toml", config).is_ok());
  EXPECT_FALSE(apply_toml("log_level = \"loud\"\n", "a.toml", config).is_ok());
}

// Parses `cairn server` flags the way main() does.
Result<ServerConfig> parse_flags(std::vector<std::string> args) {
  CLI::App app;
  ServerFlags flags;
  flags.add_to(app);
  std::reverse(args.begin(), args.end());  // CLI11 takes them in reverse order
  try {
    app.parse(args);
  } catch (const CLI::ParseError& error) {
    return Status::invalid_argument(error.what());
  }
  return flags.resolve();
}

TEST(ConfigTest, FlagsOverrideTheConfigFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("cairn-config-test-" + std::to_string(::getpid()) + ".toml");
  {
    std::ofstream file(path);
    file << "port = 7001\nmaxclients = 5\ndurability = \"none\"\n";
  }
  auto config = parse_flags({"--config", path.string(), "--port", "7002", "--timeout", "3"});
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  EXPECT_EQ(config->port, 7002);       // the flag wins
  EXPECT_EQ(config->maxclients, 5);    // from the file
  EXPECT_EQ(config->durability, storage::Durability::kNone);
  EXPECT_EQ(config->timeout_seconds, 3);
  EXPECT_EQ(config->config_file, path.string());
  std::filesystem::remove(path);
}

TEST(ConfigTest, BadFlagsAndFilesAreErrors) {
  EXPECT_FALSE(parse_flags({"--port", "-1"}).is_ok());
  EXPECT_FALSE(parse_flags({"--durability", "fast"}).is_ok());
  EXPECT_FALSE(parse_flags({"--unknown", "1"}).is_ok());
  EXPECT_FALSE(parse_flags({"--config", "/nonexistent/cairn.toml"}).is_ok());
  auto config = parse_flags({"--data-dir", "/tmp/d", "--client-query-buffer-limit", "2gb"});
  ASSERT_TRUE(config.is_ok());
  EXPECT_EQ(config->data_dir, "/tmp/d");
  EXPECT_EQ(config->client_query_buffer_limit, 2 * kGiB);
}

TEST(ConfigTest, SettingValuesRoundTrip) {
  ServerConfig config;
  for (std::string_view name : setting_names()) {
    const std::string value = setting_value(config, name);
    ServerConfig copy;
    if (name == "data-dir" || name == "bind" || name == "log-level" || name == "durability" ||
        name == "requirepass" || name == "cluster-secret" || name == "table") {
      continue;
    }
    EXPECT_TRUE(apply_setting(copy, name, value).is_ok()) << name << "=" << value;
  }
  EXPECT_EQ(setting_value(config, "durability"), "always");
}

TEST(ConfigTest, ClusterFlagsAndToml) {
  ServerConfig defaults;
  EXPECT_FALSE(defaults.cluster());
  EXPECT_EQ(defaults.workers, 32u);
  EXPECT_EQ(defaults.request_timeout_ms, 1000);
  EXPECT_EQ(defaults.machine_id, 0u);

  auto config = parse_flags({"--cluster-secret", "s3cret", "--machine-id", "18446744073709551615",
                             "--table", "/tmp/t.json", "--workers", "8",
                             "--request-timeout-ms", "250"});
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  EXPECT_TRUE(config->cluster());
  EXPECT_EQ(config->cluster_secret, "s3cret");
  EXPECT_EQ(config->machine_id, 18446744073709551615ull);
  EXPECT_EQ(config->table_file, "/tmp/t.json");
  EXPECT_EQ(config->workers, 8u);
  EXPECT_EQ(config->request_timeout_ms, 250);

  EXPECT_FALSE(parse_flags({"--workers", "0"}).is_ok());
  EXPECT_FALSE(parse_flags({"--workers", "257"}).is_ok());
  EXPECT_FALSE(parse_flags({"--request-timeout-ms", "0"}).is_ok());
  EXPECT_EQ(defaults.rebuild_max_mb_per_s, 0);
  auto throttled = parse_flags({"--rebuild-max-mb-per-s", "50"});
  ASSERT_TRUE(throttled.is_ok()) << throttled.status().to_string();
  EXPECT_EQ(throttled->rebuild_max_mb_per_s, 50);
  EXPECT_FALSE(parse_flags({"--rebuild-max-mb-per-s", "-1"}).is_ok());
  EXPECT_EQ(defaults.block_cache_mb, 32);
  EXPECT_EQ(defaults.max_clock_offset_ms, 500);
  auto tuned = parse_flags({"--block-cache-mb", "256", "--max-clock-offset-ms", "0"});
  ASSERT_TRUE(tuned.is_ok()) << tuned.status().to_string();
  EXPECT_EQ(tuned->block_cache_mb, 256);
  EXPECT_EQ(tuned->max_clock_offset_ms, 0);
  EXPECT_EQ(setting_value(*tuned, "block-cache-mb"), "256");
  EXPECT_FALSE(parse_flags({"--block-cache-mb", "4"}).is_ok());
  EXPECT_FALSE(parse_flags({"--max-clock-offset-ms", "-1"}).is_ok());
  EXPECT_FALSE(parse_flags({"--machine-id", "-1"}).is_ok());
  EXPECT_FALSE(parse_flags({"--machine-id", "18446744073709551616"}).is_ok());

  ServerConfig from_toml;
  ASSERT_TRUE(apply_toml("cluster_secret = \"x\"\nmachine_id = 7\nworkers = 2\n"
                         "request_timeout_ms = 50\ntable = \"t.json\"\n",
                         "cluster.toml", from_toml)
                  .is_ok());
  EXPECT_EQ(from_toml.cluster_secret, "x");
  EXPECT_EQ(from_toml.machine_id, 7u);
  EXPECT_EQ(from_toml.workers, 2u);
  EXPECT_EQ(from_toml.request_timeout_ms, 50);
  EXPECT_EQ(from_toml.table_file, "t.json");
}

}  // namespace
}  // namespace cairn::server
