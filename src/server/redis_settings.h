#pragma once
// Every parameter redis-server 7.0 answers in CONFIG GET *, with its default, its kind and the
// values CONFIG SET accepts (checked with Redis's error texts). Cairn stores them so clients and
// tools that read or set them work unchanged; ServerState applies the few that mean something to
// Cairn (docs/protocol.md "CONFIG").

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn::server {

enum class SettingKind {
  kString,                    // any text
  kBool,                      // yes | no
  kEnum,                      // one of `choices` (shutdown-on-sig*: several, space-separated)
  kInteger,                   // [min, max]
  kMemory,                    // a byte count with an optional unit (1gb...), [min, max]
  kImmutable,                 // "can't set immutable config"
  kProtected,                 // "can't set protected config" (enable-protected-configs is no)
  kSave,                      // pairs of integers: seconds changes
  kClientOutputBufferLimit,   // class hard soft seconds [...]
  kNotifyKeyspaceEvents,      // event class characters
  kOomScoreAdjValues,         // three integers
  kPercentiles,               // numbers in [0, 100]
  kMemoryOrPercent,           // a byte count or N%
};

struct RedisSetting {
  std::string_view name;
  std::string_view default_value;
  SettingKind kind;
  int64_t min;
  int64_t max;
  std::string_view choices;   // kEnum: "a, b, c"
  std::string_view alias_of;  // an old name (slave-*, *-ziplist-*): the parameter it stands for
};

// The table, in name order (redis_settings_table.cc).
const std::vector<RedisSetting>& redis_settings();

// The stored values. Not thread-safe: ServerState guards it with its config mutex.
class RedisSettings {
 public:
  RedisSettings();
  const RedisSetting* find(std::string_view name) const;  // case-insensitive
  // The value of a parameter (an alias answers its target's value).
  std::string get(const RedisSetting& setting) const;
  // Checks and stores a value; the error is Redis's reason text (without the "CONFIG SET
  // failed" prefix the handler adds).
  Status set(const RedisSetting& setting, std::string_view value);
  // Sets a value without checks (values Cairn derives from its own configuration).
  void put(std::string_view name, std::string value);

 private:
  std::map<std::string, std::string, std::less<>> values_;  // by canonical name
};

}  // namespace cairn::server
