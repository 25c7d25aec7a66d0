#include "server/redis_settings.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace cairn::server {
namespace {

const RedisSetting& setting(const RedisSettings& settings, std::string_view name) {
  const RedisSetting* found = settings.find(name);
  EXPECT_NE(found, nullptr) << name;
  return *found;
}

TEST(RedisSettingsTest, TableIsSortedAndComplete) {
  const std::vector<RedisSetting>& all = redis_settings();
  EXPECT_GT(all.size(), 180u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.name < b.name;
  }));
  for (const RedisSetting& s : all) {
    if (!s.alias_of.empty()) {
      EXPECT_NE(RedisSettings().find(s.alias_of), nullptr) << s.name;
    }
  }
}

TEST(RedisSettingsTest, ChecksValuesWithRedisTexts) {
  RedisSettings settings;
  const RedisSetting& policy = setting(settings, "MAXMEMORY-POLICY");
  EXPECT_EQ(settings.get(policy), "noeviction");
  EXPECT_TRUE(settings.set(policy, "AllKeys-LFU").is_ok());
  EXPECT_EQ(settings.get(policy), "allkeys-lfu");
  EXPECT_EQ(settings.set(policy, "lfu").message(),
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, "
            "volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, "
            "noeviction");
  const RedisSetting& hz = setting(settings, "hz");
  EXPECT_EQ(settings.set(hz, "x").message(), "argument couldn't be parsed into an integer");
  EXPECT_EQ(settings.set(hz, "-1").message(),
            "argument must be between 0 and 2147483647 inclusive");
  EXPECT_TRUE(settings.set(hz, "1000").is_ok());
  EXPECT_EQ(settings.get(hz), "500");
  const RedisSetting& maxmemory = setting(settings, "maxmemory");
  EXPECT_TRUE(settings.set(maxmemory, "2kb").is_ok());
  EXPECT_EQ(settings.get(maxmemory), "2048");
  EXPECT_EQ(settings.set(maxmemory, "-5").message(), "argument must be a memory value");
  EXPECT_EQ(settings.set(setting(settings, "daemonize"), "no").message(),
            "can't set immutable config");
  EXPECT_EQ(settings.set(setting(settings, "activerehashing"), "1").message(),
            "argument must be 'yes' or 'no'");
  // An old name and its new one are one parameter.
  EXPECT_TRUE(settings.set(setting(settings, "slave-priority"), "7").is_ok());
  EXPECT_EQ(settings.get(setting(settings, "replica-priority")), "7");
  EXPECT_TRUE(settings.set(setting(settings, "hash-max-listpack-entries"), "9").is_ok());
  EXPECT_EQ(settings.get(setting(settings, "hash-max-ziplist-entries")), "9");
}

TEST(RedisSettingsTest, SpecialParametersAreNormalizedAsRedisPrintsThem) {
  RedisSettings settings;
  const RedisSetting& events = setting(settings, "notify-keyspace-events");
  EXPECT_TRUE(settings.set(events, "KEA").is_ok());
  EXPECT_EQ(settings.get(events), "AKE");
  EXPECT_TRUE(settings.set(events, "Ex$").is_ok());
  EXPECT_EQ(settings.get(events), "$xE");
  EXPECT_FALSE(settings.set(events, "Q").is_ok());
  const RedisSetting& limits = setting(settings, "client-output-buffer-limit");
  EXPECT_TRUE(settings.set(limits, "pubsub 1mb 2mb 3").is_ok());
  EXPECT_EQ(settings.get(limits),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2097152 3");
  EXPECT_EQ(settings.set(limits, "foo 1 2 3").message(),
            "Invalid client class specified in buffer limit configuration.");
  const RedisSetting& save = setting(settings, "save");
  EXPECT_TRUE(settings.set(save, "3600 1  300 100").is_ok());
  EXPECT_EQ(settings.get(save), "3600 1 300 100");
  EXPECT_EQ(settings.set(save, "1").message(), "Invalid save parameters");
  EXPECT_TRUE(settings.set(setting(settings, "shutdown-on-sigint"), "nosave now").is_ok());
}

}  // namespace
}  // namespace cairn::server
