#include "server/redis_settings.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "server/config.h"

namespace cairn::server {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

std::optional<int64_t> to_int64(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

// Redis's memtoull: digits and an optional unit (b, k, kb, m, mb, g, gb), no sign.
std::optional<uint64_t> to_memory(std::string_view text) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;
  Result<uint64_t> bytes = parse_memory(text);
  if (!bytes.is_ok()) return std::nullopt;
  return *bytes;
}

Status reason(std::string text) { return Status::invalid_argument(std::move(text)); }

std::string range_error(const RedisSetting& setting) {
  return "argument must be between " + std::to_string(setting.min) + " and " +
         std::to_string(setting.max) + " inclusive";
}

// notify-keyspace-events: the classes as Redis prints them back (keyspaceEventsFlagsToString).
std::optional<std::string> normalize_events(std::string_view text) {
  constexpr std::string_view kAll = "g$lshzxetd";  // what 'A' stands for
  std::string flags;
  for (char c : text) {
    if (c == 'A') {
      flags += kAll;
    } else if (std::string_view("g$lshzxeKEtmdn").find(c) != std::string_view::npos) {
      flags += c;
    } else {
      return std::nullopt;
    }
  }
  auto has = [&](char c) { return flags.find(c) != std::string::npos; };
  std::string out;
  if (std::all_of(kAll.begin(), kAll.end(), has)) {
    out = "A";
  } else {
    for (char c : std::string_view("g$lshzxetdn")) {
      if (has(c)) out += c;
    }
  }
  if (has('K')) out += 'K';
  if (has('E')) out += 'E';
  if (has('m')) out += 'm';
  if (has('n') && out.find('n') == std::string::npos) out += 'n';
  return out;
}

// client-output-buffer-limit: each "class hard soft seconds" replaces that class's limits.
Result<std::string> merge_buffer_limits(std::string current, std::string_view text) {
  const std::vector<std::string> given = words(text);
  if (given.size() % 4 != 0) {
    return reason("Wrong number of arguments in buffer limit configuration.");
  }
  std::vector<std::string> now = words(current);
  for (size_t i = 0; i < given.size(); i += 4) {
    std::string name = lower(given[i]);
    if (name == "replica") name = "slave";
    if (name != "normal" && name != "slave" && name != "pubsub") {
      return reason("Invalid client class specified in buffer limit configuration.");
    }
    const std::optional<uint64_t> hard = to_memory(given[i + 1]);
    const std::optional<uint64_t> soft = to_memory(given[i + 2]);
    const std::optional<int64_t> seconds = to_int64(given[i + 3]);
    if (!hard || !soft || !seconds || *seconds < 0) {
      return reason("Error in hard, soft or soft-seconds setting in buffer limit configuration.");
    }
    for (size_t j = 0; j + 3 < now.size(); j += 4) {
      if (now[j] != name) continue;
      now[j + 1] = std::to_string(*hard);
      now[j + 2] = std::to_string(*soft);
      now[j + 3] = std::to_string(*seconds);
    }
  }
  std::string out;
  for (const std::string& word : now) out += (out.empty() ? "" : " ") + word;
  return out;
}

}  // namespace

RedisSettings::RedisSettings() {
  for (const RedisSetting& setting : redis_settings()) {
    if (setting.alias_of.empty()) values_.emplace(setting.name, setting.default_value);
  }
}

const RedisSetting* RedisSettings::find(std::string_view name) const {
  const std::string wanted = lower(name);
  const std::vector<RedisSetting>& all = redis_settings();
  auto it = std::lower_bound(all.begin(), all.end(), wanted,
                             [](const RedisSetting& s, const std::string& n) { return s.name < n; });
  if (it == all.end() || it->name != wanted) return nullptr;
  return &*it;
}

std::string RedisSettings::get(const RedisSetting& setting) const {
  const std::string_view name = setting.alias_of.empty() ? setting.name : setting.alias_of;
  auto it = values_.find(name);
  return it == values_.end() ? std::string(setting.default_value) : it->second;
}

void RedisSettings::put(std::string_view name, std::string value) {
  values_[std::string(name)] = std::move(value);
}

Status RedisSettings::set(const RedisSetting& setting, std::string_view value) {
  const std::string name(setting.alias_of.empty() ? setting.name : setting.alias_of);
  std::string stored(value);
  switch (setting.kind) {
    case SettingKind::kString:
      break;
    case SettingKind::kImmutable:
      return reason("can't set immutable config");
    case SettingKind::kProtected:
      return reason("can't set protected config");
    case SettingKind::kBool:
      stored = lower(value);
      if (stored != "yes" && stored != "no") return reason("argument must be 'yes' or 'no'");
      break;
    case SettingKind::kEnum: {
      const std::vector<std::string> given = words(lower(value));
      const bool several = setting.name.starts_with("shutdown-on-sig");
      std::vector<std::string> choices;
      for (std::string word : words(setting.choices)) {
        if (!word.empty() && word.back() == ',') word.pop_back();
        choices.push_back(std::move(word));
      }
      bool ok = !given.empty() && (several || given.size() == 1);
      for (const std::string& word : given) {
        ok = ok && std::find(choices.begin(), choices.end(), word) != choices.end();
      }
      if (!ok) {
        return reason("argument(s) must be one of the following: " + std::string(setting.choices));
      }
      stored.clear();
      for (const std::string& word : given) stored += (stored.empty() ? "" : " ") + word;
      break;
    }
    case SettingKind::kInteger: {
      const std::optional<int64_t> number = to_int64(value);
      if (!number) return reason("argument couldn't be parsed into an integer");
      if (*number < setting.min || *number > setting.max) return reason(range_error(setting));
      // Redis keeps hz within [1, 500] whatever is set.
      stored = std::to_string(setting.name == "hz" ? std::clamp<int64_t>(*number, 1, 500)
                                                   : *number);
      break;
    }
    case SettingKind::kMemory: {
      const std::optional<uint64_t> bytes = to_memory(value);
      if (!bytes) return reason("argument must be a memory value");
      if (*bytes > static_cast<uint64_t>(setting.max) ||
          static_cast<int64_t>(*bytes) < setting.min) {
        return reason(range_error(setting));
      }
      stored = std::to_string(*bytes);
      break;
    }
    case SettingKind::kMemoryOrPercent: {
      if (!value.empty() && value.back() == '%') {
        const std::optional<int64_t> percent = to_int64(value.substr(0, value.size() - 1));
        if (!percent || *percent < 0) return reason("argument must be a memory or percent value");
        stored = std::to_string(*percent) + "%";
      } else {
        const std::optional<uint64_t> bytes = to_memory(value);
        if (!bytes) return reason("argument must be a memory or percent value");
        stored = std::to_string(*bytes);
      }
      break;
    }
    case SettingKind::kSave: {
      const std::vector<std::string> given = words(value);
      if (given.size() % 2 != 0) return reason("Invalid save parameters");
      for (const std::string& word : given) {
        const std::optional<int64_t> number = to_int64(word);
        if (!number || *number < 0) return reason("Invalid save parameters");
      }
      stored.clear();
      for (const std::string& word : given) stored += (stored.empty() ? "" : " ") + word;
      break;
    }
    case SettingKind::kClientOutputBufferLimit: {
      Result<std::string> merged = merge_buffer_limits(get(setting), value);
      if (!merged.is_ok()) return merged.status();
      stored = std::move(*merged);
      break;
    }
    case SettingKind::kNotifyKeyspaceEvents: {
      std::optional<std::string> events = normalize_events(value);
      if (!events) return reason("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
      stored = std::move(*events);
      break;
    }
    case SettingKind::kOomScoreAdjValues: {
      const std::vector<std::string> given = words(value);
      if (given.size() != 3) return reason("wrong number of arguments");
      for (const std::string& word : given) {
        const std::optional<int64_t> number = to_int64(word);
        if (!number || *number < -2000 || *number > 2000) {
          return reason("Invalid oom-score-adj-values value");
        }
      }
      break;
    }
    case SettingKind::kPercentiles: {
      const std::vector<std::string> given = words(value);
      for (const std::string& word : given) {
        char* end = nullptr;
        const double number = std::strtod(word.c_str(), &end);
        if (end == word.c_str() || *end != '\0' || std::isnan(number)) {
          return reason("Invalid latency-tracking-info-percentiles parameters");
        }
        if (number < 0 || number > 100) {
          return reason(
              "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]");
        }
      }
      break;
    }
  }
  values_[name] = std::move(stored);
  return Status::ok();
}

}  // namespace cairn::server
