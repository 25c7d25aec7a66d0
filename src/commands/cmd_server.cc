// Server commands: COMMAND, INFO, CONFIG, TIME, SHUTDOWN, LASTSAVE. Replies follow redis-server
// 7.0.15 byte for byte; COMMAND INFO and COMMAND DOCS use the Redis 7 layouts that clients
// (redis-cli, redis-py) parse at connect time.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/glob.h"
#include "commands/parse.h"

namespace cairn::commands {
namespace {

// The ACL categories in the order of Redis 7.0's ACLCommandCategories, which is the order
// COMMAND INFO lists them in.
constexpr std::string_view kAclCategories[] = {
    "keyspace", "read",  "write",    "set",       "sortedset",  "list",        "hash",
    "string",   "bitmap", "hyperloglog", "geo",   "stream",     "pubsub",      "admin",
    "fast",     "slow",  "blocking", "dangerous", "connection", "transaction", "scripting",
};

// The category every command of a group belongs to (Redis's JSON files list them per command,
// always alike within a group). Groups without one, like "server", return "".
std::string_view group_category(std::string_view group) {
  if (group == "generic") return "keyspace";
  if (group == "sorted-set") return "sortedset";
  if (group == "transactions") return "transaction";
  if (group == "string" || group == "list" || group == "hash" || group == "set" ||
      group == "bitmap" || group == "hyperloglog" || group == "geo" || group == "stream" ||
      group == "pubsub" || group == "connection" || group == "scripting") {
    return group;
  }
  return {};
}

// Explicit, group and flag-implied categories, as Redis's setImplicitACLCategories computes them.
std::vector<std::string_view> acl_categories(const CommandSpec& spec) {
  auto has = [&spec](std::string_view category) {
    if ((spec.flags & kWrite) && category == "write") return true;
    if ((spec.flags & kReadOnly) && category == "read") return true;
    if ((spec.flags & kAdmin) && (category == "admin" || category == "dangerous")) return true;
    if ((spec.flags & kPubSub) && category == "pubsub") return true;
    if ((spec.flags & kFast) && category == "fast") return true;
    if ((spec.flags & kBlocking) && category == "blocking") return true;
    // Containers carry no categories of their own group (CLIENT is only @slow).
    if (spec.subcommands.empty() && category == group_category(spec.group)) return true;
    for (const std::string& explicit_category : spec.acl_categories) {
      if (explicit_category == category) return true;
    }
    return false;
  };
  std::vector<std::string_view> categories;
  for (std::string_view category : kAclCategories) {
    if (category == "slow") {
      if (!has("fast")) categories.push_back(category);  // not @fast is @slow
    } else if (has(category)) {
      categories.push_back(category);
    }
  }
  return categories;
}

std::vector<std::string> tips_of(const CommandSpec& spec) {
  std::vector<std::string> tips = spec.tips;
  constexpr std::string_view kNondeterministic = "nondeterministic_output";
  if ((spec.flags & kRandom) && std::find(tips.begin(), tips.end(), kNondeterministic) == tips.end()) {
    tips.insert(tips.begin(), std::string(kNondeterministic));
  }
  return tips;
}

// One key spec: flags, begin_search by index, then find_keys of `find_type` whose spec
// `find_spec` writes (a map of 3).
void write_key_spec_map(resp::ReplyWriter& reply, const std::vector<std::string>& flags,
                        int begin_index, std::string_view find_type,
                        const std::function<void()>& find_spec) {
  reply.map(3);
  reply.bulk("flags");
  reply.set(flags.size());
  for (const std::string& flag : flags) reply.simple(flag);
  reply.bulk("begin_search");
  reply.map(2);
  reply.bulk("type");
  reply.bulk("index");
  reply.bulk("spec");
  reply.map(1);
  reply.bulk("index");
  reply.integer(begin_index);
  reply.bulk("find_keys");
  reply.map(2);
  reply.bulk("type");
  reply.bulk(find_type);
  reply.bulk("spec");
  reply.map(3);
  find_spec();
}

void write_key_spec(resp::ReplyWriter& reply, const CommandSpec& spec) {
  std::vector<std::string> flags = spec.key_spec_flags;
  if (flags.empty()) {
    if (spec.flags & kWrite) {
      flags = {"RW", "update"};
    } else if (spec.flags & kReadOnly) {
      flags = {"RO", "access"};
    }
  }
  write_key_spec_map(reply, flags, spec.first_key, "range", [&] {
    reply.bulk("lastkey");
    reply.integer(spec.last_key < 0 ? spec.last_key : spec.last_key - spec.first_key);
    reply.bulk("keystep");
    reply.integer(spec.key_step);
    reply.bulk("limit");
    reply.integer(0);
  });
}

// The key spec of keys counted by an argument: begin at it, "keynum" (the count, then the keys).
// Sources of a *STORE command are read; keys of a command without a first key are its own.
void write_numkeys_key_spec(resp::ReplyWriter& reply, const CommandSpec& spec) {
  const bool write = (spec.flags & kWrite) != 0 && spec.first_key <= 0;
  const std::vector<std::string> flags =
      write ? std::vector<std::string>{"RW", "update"} : std::vector<std::string>{"RO", "access"};
  write_key_spec_map(reply, flags, spec.numkeys_index, "keynum", [&] {
    reply.bulk("keynumidx");
    reply.integer(0);
    reply.bulk("firstkey");
    reply.integer(1);
    reply.bulk("keystep");
    reply.integer(1);
  });
}

// One COMMAND INFO entry: [name, arity, flags, first, last, step, acl, tips, key specs, subs].
void write_command_info(resp::ReplyWriter& reply, const CommandSpec& spec) {
  reply.array(10);
  reply.bulk(spec.name);
  reply.integer(spec.arity);
  const std::vector<std::string_view> flags = flag_names(spec.flags);
  reply.set(flags.size());
  for (std::string_view flag : flags) reply.simple(flag);
  reply.integer(spec.first_key);
  reply.integer(spec.last_key);
  reply.integer(spec.key_step);
  const std::vector<std::string_view> categories = acl_categories(spec);
  reply.set(categories.size());
  for (std::string_view category : categories) reply.simple("@" + std::string(category));
  const std::vector<std::string> tips = tips_of(spec);
  reply.set(tips.size());
  for (const std::string& tip : tips) reply.bulk(tip);
  const bool has_keys = spec.first_key > 0;
  const bool has_numkeys = spec.numkeys_index > 0;
  reply.set((has_keys ? 1 : 0) + (has_numkeys ? 1 : 0));
  if (has_keys) write_key_spec(reply, spec);
  if (has_numkeys) write_numkeys_key_spec(reply, spec);
  reply.set(spec.subcommands.size());
  for (const CommandSpec& sub : spec.subcommands) write_command_info(reply, sub);
}

// One COMMAND DOCS value: a map of summary, since, group, complexity[, subcommands].
void write_command_docs(resp::ReplyWriter& reply, const CommandSpec& spec) {
  const bool container = !spec.subcommands.empty();
  reply.map(container ? 5 : 4);
  reply.bulk("summary");
  reply.bulk(spec.summary);
  reply.bulk("since");
  reply.bulk(spec.since);
  reply.bulk("group");
  reply.bulk(spec.group);
  reply.bulk("complexity");
  reply.bulk(spec.complexity);
  if (container) {
    reply.bulk("subcommands");
    reply.map(spec.subcommands.size());
    for (const CommandSpec& sub : spec.subcommands) {
      reply.bulk(sub.name);
      write_command_docs(reply, sub);
    }
  }
}

// Looks up "get" or "client|setname" (COMMAND INFO/DOCS accept both), case-insensitively.
const CommandSpec* find_by_full_name(const CommandTable& table, std::string_view name) {
  const size_t bar = name.find('|');
  if (bar == std::string_view::npos) return table.find(name);
  const CommandSpec* container = table.find(name.substr(0, bar));
  if (container == nullptr) return nullptr;
  return table.find_subcommand(*container, name.substr(bar + 1));
}


void command_all(CommandContext& context) {
  const auto& all = default_table().all();
  context.reply.array(all.size());
  for (const auto& [name, spec] : all) write_command_info(context.reply, spec);
}

void command_count(CommandContext& context) {
  context.reply.integer(static_cast<int64_t>(default_table().all().size()));
}

void command_info(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  if (args.size() == 2) {
    command_all(context);
    return;
  }
  context.reply.array(args.size() - 2);
  for (size_t i = 2; i < args.size(); ++i) {
    const CommandSpec* spec = find_by_full_name(default_table(), args[i]);
    if (spec == nullptr) {
      context.reply.null();
    } else {
      write_command_info(context.reply, *spec);
    }
  }
}

void command_docs(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  if (args.size() == 2) {
    const auto& all = default_table().all();
    context.reply.map(all.size());
    for (const auto& [name, spec] : all) {
      context.reply.bulk(name);
      write_command_docs(context.reply, spec);
    }
    return;
  }
  std::vector<const CommandSpec*> found;
  for (size_t i = 2; i < args.size(); ++i) {
    const CommandSpec* spec = find_by_full_name(default_table(), args[i]);
    if (spec != nullptr) found.push_back(spec);  // unknown names are left out, as in Redis
  }
  context.reply.map(found.size());
  for (const CommandSpec* spec : found) {
    context.reply.bulk(spec->name);
    write_command_docs(context.reply, *spec);
  }
}

// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every command and
// subcommand name that passes the filter.
void command_list(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  enum class Filter { kNone, kModule, kCategory, kPattern } filter = Filter::kNone;
  std::string value;
  if (args.size() == 5 && equals_ignore_case(args[2], "filterby")) {
    value = args[4];
    if (equals_ignore_case(args[3], "module")) {
      filter = Filter::kModule;
    } else if (equals_ignore_case(args[3], "aclcat")) {
      filter = Filter::kCategory;
    } else if (equals_ignore_case(args[3], "pattern")) {
      filter = Filter::kPattern;
    } else {
      context.reply.error(kErrSyntax);
      return;
    }
  } else if (args.size() != 2) {
    context.reply.error(kErrSyntax);
    return;
  }
  const std::string category = to_lower(value);
  auto passes = [&](const CommandSpec& spec) {
    switch (filter) {
      case Filter::kNone:
        return true;
      case Filter::kModule:
        return false;  // Cairn has no modules
      case Filter::kCategory:
        for (std::string_view c : acl_categories(spec)) {
          if (c == category) return true;
        }
        return false;
      case Filter::kPattern:
        return glob_match(value, spec.name, /*nocase=*/true);
    }
    return false;
  };
  std::vector<std::string_view> names;
  for (const auto& [name, spec] : default_table().all()) {
    if (passes(spec)) names.push_back(spec.name);
    for (const CommandSpec& sub : spec.subcommands) {
      if (passes(sub)) names.push_back(sub.name);
    }
  }
  context.reply.array(names.size());
  for (std::string_view name : names) context.reply.bulk(name);
}

// COMMAND GETKEYS command [arg ...]: the keys of a full command, from the key positions.
void command_getkeys(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  const CommandTable& table = default_table();
  const CommandSpec* spec = table.find(args[2]);
  if (spec != nullptr && !spec->subcommands.empty() && args.size() >= 4) {
    spec = table.find_subcommand(*spec, args[3]);
  }
  if (spec == nullptr) {
    context.reply.error("ERR Invalid command specified");
    return;
  }
  if (spec->first_key <= 0 && (spec->flags & kMovableKeys) == 0) {
    context.reply.error("ERR The command has no key arguments");
    return;
  }
  const size_t argc = args.size() - 2;
  if ((spec->arity > 0 && static_cast<size_t>(spec->arity) != argc) ||
      (spec->arity < 0 && argc < static_cast<size_t>(-spec->arity))) {
    context.reply.error("ERR Invalid number of arguments specified for command");
    return;
  }
  const std::vector<size_t> indexes =
      key_indexes(*spec, std::span<const std::string>(args.data() + 2, argc));
  if (indexes.empty()) {
    if (spec->flags & kNoMandatoryKeys) {
      context.reply.array(0);
    } else {
      context.reply.error("ERR Invalid arguments specified for command");
    }
    return;
  }
  context.reply.array(indexes.size());
  for (size_t index : indexes) context.reply.bulk(args[index + 2]);
}

void command_help(CommandContext& context) {
  write_help(context.reply, "COMMAND",
             {
                 "(no subcommand)",
                 "    Return details about all Redis commands.",
                 "COUNT",
                 "    Return the total number of commands in this Redis server.",
                 "LIST",
                 "    Return a list of all commands in this Redis server.",
                 "INFO [<command-name> ...]",
                 "    Return details about multiple Redis commands.",
                 "    If no command names are given, documentation details for all",
                 "    commands are returned.",
                 "DOCS [<command-name> ...]",
                 "    Return documentation details about multiple Redis commands.",
                 "    If no command names are given, documentation details for all",
                 "    commands are returned.",
                 "GETKEYS <full-command>",
                 "    Return the keys from a full Redis command.",
             });
}

// INFO [section ...]: the sections ServerControl renders, each once, separated by a blank line.
void info(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  std::string text;
  if (args.size() == 1) {
    text = context.server.info("");
  } else {
    std::vector<std::string> seen;
    for (size_t i = 1; i < args.size(); ++i) {
      std::string section = to_lower(args[i]);
      if (std::find(seen.begin(), seen.end(), section) != seen.end()) continue;
      std::string part = context.server.info(section);
      seen.push_back(std::move(section));
      if (part.empty()) continue;
      if (!text.empty()) text += "\r\n";
      text += part;
    }
  }
  context.reply.verbatim(text);
}

void time(CommandContext& context) {
  // The keyspace's clock is the one expiry uses, so TIME and TTLs agree.
  const int64_t now_ms = context.keyspace.now_ms();
  context.reply.array(2);
  context.reply.bulk(std::to_string(now_ms / 1000));
  context.reply.bulk(std::to_string((now_ms % 1000) * 1000));
}

// Every write is in the WAL before it is acknowledged, so the data is always "saved": LASTSAVE
// answers with the current time.
void lastsave(CommandContext& context) { context.reply.integer(context.keyspace.now_ms() / 1000); }

bool has_glob_characters(std::string_view name) {
  return name.find_first_of("*?[\\") != std::string_view::npos;
}

// CONFIG GET pattern [pattern ...]: a map of every matching parameter, each listed once.
void config_get(CommandContext& context) {
  std::vector<std::pair<std::string, std::string>> found;
  for (size_t i = 2; i < context.args.size(); ++i) {
    for (auto& [name, value] : context.server.config_get(context.args[i])) {
      bool seen = false;
      for (const auto& entry : found) seen = seen || entry.first == name;
      if (!seen) found.emplace_back(std::move(name), std::move(value));
    }
  }
  context.reply.map(found.size());
  for (const auto& [name, value] : found) {
    context.reply.bulk(name);
    context.reply.bulk(value);
  }
}

std::string config_set_failed(std::string_view name, std::string_view reason) {
  return "ERR CONFIG SET failed (possibly related to argument '" + std::string(name) + "') - " +
         std::string(reason);
}

// The current value of parameter `name`, if it exists. Parameter names have no glob characters,
// so a name with any is unknown.
std::optional<std::string> current_value(ServerControl& server, std::string_view name) {
  if (has_glob_characters(name)) return std::nullopt;
  for (auto& [found, value] : server.config_get(name)) {
    if (equals_ignore_case(found, name)) return std::move(value);
  }
  return std::nullopt;
}

// CONFIG SET name value [name value ...]: all or nothing, as in Redis. Names are checked first;
// if one value is refused, the values already set are put back.
void config_set(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  if (args.size() % 2 != 0) {
    context.reply.error("ERR wrong number of arguments for 'config|set' command");
    return;
  }
  std::vector<std::string> old_values;
  const std::string* duplicate = nullptr;
  for (size_t i = 2; i < args.size(); i += 2) {
    std::optional<std::string> old = current_value(context.server, args[i]);
    if (!old) {
      context.reply.error("ERR Unknown option or number of arguments for CONFIG SET - '" +
                          args[i] + "'");
      return;
    }
    for (size_t j = 2; j < i && duplicate == nullptr; j += 2) {
      if (equals_ignore_case(args[j], args[i])) duplicate = &args[i];
    }
    old_values.push_back(std::move(*old));
  }
  if (duplicate != nullptr) {
    context.reply.error(config_set_failed(*duplicate, "duplicate parameter"));
    return;
  }
  for (size_t i = 2; i < args.size(); i += 2) {
    const Status status = context.server.config_set(args[i], args[i + 1]);
    if (status.is_ok()) continue;
    for (size_t j = 2; j < i; j += 2) {
      // Restoring a value that was accepted before cannot fail; if it does, there is nothing
      // better to do than report the original error.
      (void)context.server.config_set(args[j], old_values[(j - 2) / 2]);
    }
    if (status.code() == StatusCode::kNotFound) {
      context.reply.error("ERR Unknown option or number of arguments for CONFIG SET - '" +
                          args[i] + "'");
    } else {
      context.reply.error(config_set_failed(args[i], status.message()));
    }
    return;
  }
  context.reply.ok();
}

void config_resetstat(CommandContext& context) { context.reply.ok(); }

void config_rewrite(CommandContext& context) {
  context.reply.error("ERR The server is running without a config file");
}

void config_help(CommandContext& context) {
  write_help(context.reply, "CONFIG",
             {
                 "GET <pattern>",
                 "    Return parameters matching the glob-like <pattern> and their values.",
                 "SET <directive> <value>",
                 "    Set the configuration <directive> to <value>.",
                 "RESETSTAT",
                 "    Reset statistics reported by the INFO command.",
                 "REWRITE",
                 "    Rewrite the configuration file.",
             });
}

// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. Nothing needs saving (the WAL has every write),
// so every form stops at once; hence there is never a shutdown in progress to ABORT.
void shutdown(CommandContext& context) {
  bool save = false;
  bool no_save = false;
  bool other = false;
  bool abort = false;
  for (size_t i = 1; i < context.args.size(); ++i) {
    const std::string& option = context.args[i];
    if (equals_ignore_case(option, "nosave")) {
      no_save = true;
    } else if (equals_ignore_case(option, "save")) {
      save = true;
    } else if (equals_ignore_case(option, "now") || equals_ignore_case(option, "force")) {
      other = true;
    } else if (equals_ignore_case(option, "abort")) {
      abort = true;
    } else {
      context.reply.error(kErrSyntax);
      return;
    }
  }
  if ((abort && (save || no_save || other)) || (save && no_save)) {
    context.reply.error(kErrSyntax);
    return;
  }
  if (abort) {
    context.reply.error("ERR No shutdown in progress.");
    return;
  }
  // No reply: the server stops and closes the connection, as redis-server does.
  context.session.close_after_reply = true;
  context.server.request_shutdown();
}

// SLOWLOG GET [count] | LEN | RESET | HELP, with Redis's reply shapes.
void slowlog_get(CommandContext& context) {
  int64_t count = 10;
  if (context.args.size() == 3) {
    const std::optional<int64_t> parsed = parse_int64(context.args[2]);
    if (!parsed || *parsed < -1) {
      context.reply.error("ERR count should be greater than or equal to -1");
      return;
    }
    count = *parsed;
  }
  const std::vector<SlowlogEntry> entries = context.server.slowlog_get(count);
  context.reply.array(entries.size());
  for (const SlowlogEntry& entry : entries) {
    context.reply.array(6);
    context.reply.integer(static_cast<int64_t>(entry.id));
    context.reply.integer(entry.time_s);
    context.reply.integer(static_cast<int64_t>(entry.duration_us));
    context.reply.array(entry.args.size());
    for (const std::string& arg : entry.args) context.reply.bulk(arg);
    context.reply.bulk(entry.client_address);
    context.reply.bulk(entry.client_name);
  }
}

void slowlog_len(CommandContext& context) {
  context.reply.integer(static_cast<int64_t>(context.server.slowlog_len()));
}

void slowlog_reset(CommandContext& context) {
  context.server.slowlog_reset();
  context.reply.ok();
}

void slowlog_help(CommandContext& context) {
  write_help(context.reply, "SLOWLOG",
             {
                 "GET [<count>]",
                 "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                 "    Entries are made of:",
                 "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                 "    client name",
                 "LEN",
                 "    Return the length of the slowlog.",
                 "RESET",
                 "    Reset the slowlog.",
             });
}

void latency_latest(CommandContext& context) {
  const std::vector<LatencyEvent> events = context.server.latency_events();
  context.reply.array(events.size());
  for (const LatencyEvent& event : events) {
    context.reply.array(4);
    context.reply.bulk(event.name);
    context.reply.integer(event.latest_time_s);
    context.reply.integer(static_cast<int64_t>(event.latest_ms));
    context.reply.integer(static_cast<int64_t>(event.max_ms));
  }
}

void latency_history(CommandContext& context) {
  for (const LatencyEvent& event : context.server.latency_events()) {
    if (!equals_ignore_case(event.name, context.args[2])) continue;
    context.reply.array(event.history.size());
    for (const auto& [time_s, ms] : event.history) {
      context.reply.array(2);
      context.reply.integer(time_s);
      context.reply.integer(static_cast<int64_t>(ms));
    }
    return;
  }
  context.reply.array(0);
}

void latency_reset(CommandContext& context) {
  const std::vector<std::string> events(context.args.begin() + 2, context.args.end());
  context.reply.integer(static_cast<int64_t>(context.server.latency_reset(events)));
}

void latency_help(CommandContext& context) {
  write_help(context.reply, "LATENCY",
             {
                 "LATEST",
                 "    Return the latest latency samples for all events.",
                 "HISTORY <event>",
                 "    Return time-latency samples for the <event> class.",
                 "RESET [<event> ...]",
                 "    Reset latency data of one or more <event> classes.",
                 "    (default: reset all data for all event classes)",
             });
}

constexpr uint32_t kAdminFlags = kAdmin | kNoScript | kLoading | kStale;

CommandSpec spec(std::string name, int arity, uint32_t flags, std::string summary,
                 std::string since, std::string complexity, Handler handler) {
  return make_command_spec("server", std::move(name), arity, flags, std::move(summary),
                           std::move(since), std::move(complexity), std::move(handler));
}

constexpr std::string_view kOrderTip = "nondeterministic_output_order";

CommandSpec command_container() {
  CommandSpec command =
      spec("command", -1, kLoading | kStale, "Get array of Redis command details", "2.8.13",
           "O(N) where N is the total number of Redis commands", command_all);
  command.acl_categories = {"connection"};
  command.tips = {std::string(kOrderTip)};
  auto add = [&command](CommandSpec sub, bool unordered) {
    sub.acl_categories = {"connection"};
    if (unordered) sub.tips = {std::string(kOrderTip)};
    command.subcommands.push_back(std::move(sub));
  };
  add(spec("command|count", 2, kLoading | kStale, "Get total number of Redis commands", "2.8.13",
           "O(1)", command_count),
      false);
  add(spec("command|info", -2, kLoading | kStale,
           "Get array of specific Redis command details, or all when no argument is given.",
           "2.8.13", "O(N) where N is the number of commands to look up", command_info),
      true);
  add(spec("command|docs", -2, kLoading | kStale,
           "Get array of specific Redis command documentation", "7.0.0",
           "O(N) where N is the number of commands to look up", command_docs),
      true);
  add(spec("command|list", -2, kLoading | kStale, "Get an array of Redis command names", "7.0.0",
           "O(N) where N is the total number of Redis commands", command_list),
      true);
  add(spec("command|getkeys", -4, kLoading | kStale, "Extract keys given a full Redis command",
           "2.8.13", "O(N) where N is the number of arguments to the command", command_getkeys),
      false);
  add(spec("command|help", 2, kLoading | kStale,
           "Show helpful text about the different subcommands", "5.0.0", "O(1)", command_help),
      false);
  return command;
}

CommandSpec config_container() {
  CommandSpec config = spec("config", -2, 0, "A container for server configuration commands",
                            "2.0.0", "Depends on subcommand.", nullptr);
  auto& subs = config.subcommands;
  subs.push_back(spec("config|get", -3, kAdminFlags,
                      "Get the values of configuration parameters", "2.0.0",
                      "O(N) when N is the number of configuration parameters provided",
                      config_get));
  CommandSpec set = spec("config|set", -4, kAdminFlags,
                         "Set configuration parameters to the given values", "2.0.0",
                         "O(N) when N is the number of configuration parameters provided",
                         config_set);
  set.tips = {"request_policy:all_nodes", "response_policy:all_succeeded"};
  subs.push_back(std::move(set));
  subs.push_back(spec("config|resetstat", 2, kAdminFlags, "Reset the stats returned by INFO",
                      "2.0.0", "O(1)", config_resetstat));
  subs.push_back(spec("config|rewrite", 2, kAdminFlags,
                      "Rewrite the configuration file with the in memory configuration", "2.8.0",
                      "O(1)", config_rewrite));
  subs.push_back(spec("config|help", 2, kLoading | kStale,
                      "Show helpful text about the different subcommands", "5.0.0", "O(1)",
                      config_help));
  return config;
}

CommandSpec slowlog_container() {
  CommandSpec slowlog = spec("slowlog", -2, 0, "A container for slow log commands", "2.2.12",
                             "Depends on subcommand.", nullptr);
  auto& subs = slowlog.subcommands;
  subs.push_back(spec("slowlog|get", -2, kAdminFlags, "Get the slow log's entries", "2.2.12",
                      "O(N) where N is the number of entries returned", slowlog_get));
  subs.push_back(spec("slowlog|len", 2, kAdminFlags, "Get the slow log's length", "2.2.12",
                      "O(1)", slowlog_len));
  subs.push_back(spec("slowlog|reset", 2, kAdminFlags, "Clear all entries from the slow log",
                      "2.2.12", "O(N) where N is the number of entries in the slowlog",
                      slowlog_reset));
  subs.push_back(spec("slowlog|help", 2, kLoading | kStale,
                      "Show helpful text about the different subcommands", "6.2.0", "O(1)",
                      slowlog_help));
  return slowlog;
}

CommandSpec latency_container() {
  CommandSpec latency = spec("latency", -2, 0, "A container for latency diagnostics commands",
                             "2.8.13", "Depends on subcommand.", nullptr);
  auto& subs = latency.subcommands;
  subs.push_back(spec("latency|latest", 2, kAdminFlags,
                      "Return the latest latency samples for all events", "2.8.13", "O(1)",
                      latency_latest));
  subs.push_back(spec("latency|history", 3, kAdminFlags,
                      "Return timestamp-latency samples for an event", "2.8.13", "O(1)",
                      latency_history));
  subs.push_back(spec("latency|reset", -2, kAdminFlags,
                      "Reset latency data for one or more events", "2.8.13", "O(1)",
                      latency_reset));
  subs.push_back(spec("latency|help", 2, kLoading | kStale,
                      "Show helpful text about the different subcommands", "2.8.13", "O(1)",
                      latency_help));
  return latency;
}

}  // namespace

void write_help(resp::ReplyWriter& reply, std::string_view command,
                const std::vector<std::string_view>& lines) {
  reply.array(lines.size() + 3);
  reply.simple(std::string(command) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
  for (std::string_view line : lines) reply.simple(line);
  reply.simple("HELP");
  reply.simple("    Prints this help.");
}

void register_server_commands(CommandTable& table) {
  table.add(command_container());
  table.add(config_container());
  table.add(slowlog_container());
  table.add(latency_container());
  CommandSpec info_spec = spec("info", -1, kLoading | kStale,
                               "Get information and statistics about the server", "1.0.0", "O(1)",
                               info);
  info_spec.acl_categories = {"dangerous"};
  info_spec.tips = {"nondeterministic_output", "request_policy:all_shards",
                    "response_policy:special"};
  table.add(std::move(info_spec));
  CommandSpec time_spec = spec("time", 1, kLoading | kStale | kFast,
                               "Return the current server time", "2.6.0", "O(1)", time);
  time_spec.tips = {"nondeterministic_output"};
  table.add(std::move(time_spec));
  CommandSpec lastsave_spec =
      spec("lastsave", 1, kLoading | kStale | kFast,
           "Get the UNIX time stamp of the last successful save to disk", "1.0.0", "O(1)",
           lastsave);
  lastsave_spec.acl_categories = {"admin", "dangerous"};
  lastsave_spec.tips = {"nondeterministic_output"};
  table.add(std::move(lastsave_spec));
  table.add(spec("shutdown", -1, kAdminFlags | kNoMulti | kAllowBusy,
                 "Synchronously save the dataset to disk and then shut down the server", "1.0.0",
                 "O(N) when saving, where N is the total number of keys in all databases when "
                 "saving data, otherwise O(1)",
                 shutdown));
}

}  // namespace cairn::commands
