// Connection commands: PING ECHO HELLO AUTH QUIT SELECT CLIENT. Replies follow redis-server
// 7.0.15 byte for byte, except where Cairn has less to offer (one database, no client-side
// caching, no pausing), which is said at each such place.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/parse.h"

namespace cairn::commands {
namespace {

constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";
constexpr std::string_view kDefaultUser = "default";
constexpr std::string_view kServerVersion = "7.0.15";  // what HELLO reports, as redis-server does

// Redis accepts names made only of printable ASCII without spaces ('!' through '~').
bool valid_client_attribute(std::string_view value) {
  for (char c : value) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

// Checks `password` for `user` against the server's requirepass. Cairn has one user, "default";
// with no requirepass it accepts any password, as Redis's "nopass" default user does.
bool credentials_ok(CommandContext& context, std::string_view user, std::string_view password) {
  if (user != kDefaultUser) return false;  // Redis user names are case-sensitive
  const std::string required = context.server.requirepass();
  return required.empty() || password == required;
}

void write_help(resp::ReplyWriter& reply, std::string_view command,
                const std::vector<std::string_view>& lines) {
  reply.array(lines.size() + 3);
  reply.simple(std::string(command) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
  for (std::string_view line : lines) reply.simple(line);
  reply.simple("HELP");
  reply.simple("    Prints this help.");
}

// One parsed line of ServerControl::client_list(): "id=3 addr=1.2.3.4:5 laddr=... name=...".
struct ClientLine {
  std::string text;
  uint64_t id = 0;
  std::string addr;
  std::string laddr;
};

std::string field_of(std::string_view line, std::string_view key) {
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    const std::string_view field = line.substr(pos, end - pos);
    if (field.size() > key.size() && field.substr(0, key.size()) == key &&
        field[key.size()] == '=') {
      return std::string(field.substr(key.size() + 1));
    }
    pos = end + 1;
  }
  return {};
}

std::vector<ClientLine> parse_client_list(std::string_view list) {
  std::vector<ClientLine> clients;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t end = list.find('\n', pos);
    if (end == std::string_view::npos) end = list.size();
    std::string_view line = list.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    ClientLine client;
    client.text = std::string(line) + "\n";
    const std::optional<int64_t> id = parse_int64(field_of(line, "id"));
    if (id && *id > 0) client.id = static_cast<uint64_t>(*id);
    client.addr = field_of(line, "addr");
    client.laddr = field_of(line, "laddr");
    clients.push_back(std::move(client));
  }
  return clients;
}

// INFO-like text is a verbatim string in RESP3 and a bulk string in RESP2.
void write_text(resp::ReplyWriter& reply, std::string_view text) { reply.verbatim(text); }

void ping(CommandContext& context) {
  // PING's arity is -1 in Redis's table, yet more than one argument is an arity error.
  if (context.args.size() > 2) {
    context.reply.error("ERR wrong number of arguments for 'ping' command");
    return;
  }
  if (context.session.protocol == 2 && context.session.subscribed()) {
    // In RESP2 subscribed mode a reply must look like a message: ["pong", message or ""].
    context.reply.array(2);
    context.reply.bulk("pong");
    context.reply.bulk(context.args.size() == 2 ? std::string_view(context.args[1]) : "");
    return;
  }
  if (context.args.size() == 1) {
    context.reply.simple("PONG");
  } else {
    context.reply.bulk(context.args[1]);
  }
}

void echo(CommandContext& context) { context.reply.bulk(context.args[1]); }

void write_hello_reply(CommandContext& context) {
  resp::ReplyWriter& reply = context.reply;
  reply.map(7);
  reply.bulk("server");
  reply.bulk("redis");
  reply.bulk("version");
  reply.bulk(kServerVersion);
  reply.bulk("proto");
  reply.integer(context.session.protocol);
  reply.bulk("id");
  reply.integer(static_cast<int64_t>(context.session.id));
  reply.bulk("mode");
  reply.bulk("standalone");
  reply.bulk("role");
  reply.bulk("master");
  reply.bulk("modules");
  reply.array(0);
}

void hello(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  int64_t version = 0;
  size_t next = 1;
  if (args.size() >= 2) {
    const std::optional<int64_t> parsed = parse_int64(args[1]);
    if (!parsed) {
      context.reply.error("ERR Protocol version is not an integer or out of range");
      return;
    }
    version = *parsed;
    if (version < 2 || version > 3) {
      context.reply.error("NOPROTO unsupported protocol version");
      return;
    }
    next = 2;
  }
  const std::string* user = nullptr;
  const std::string* password = nullptr;
  const std::string* name = nullptr;
  for (size_t i = next; i < args.size(); ++i) {
    const size_t more = args.size() - 1 - i;
    if (equals_ignore_case(args[i], "auth") && more >= 2) {
      user = &args[i + 1];
      password = &args[i + 2];
      i += 2;
    } else if (equals_ignore_case(args[i], "setname") && more >= 1) {
      name = &args[i + 1];
      if (!valid_client_attribute(*name)) {
        context.reply.error(
            "ERR Client names cannot contain spaces, newlines or special characters.");
        return;
      }
      i += 1;
    } else {
      context.reply.error("ERR Syntax error in HELLO option '" + args[i] + "'");
      return;
    }
  }
  if (user != nullptr) {
    if (!credentials_ok(context, *user, *password)) {
      context.reply.error(kWrongPass);
      return;
    }
    context.session.authenticated = true;
  }
  if (!context.session.authenticated) {
    context.reply.error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO AUTH <user> <pass> option can be used to authenticate the client and select the "
        "RESP protocol version at the same time");
    return;
  }
  if (name != nullptr) context.session.name = *name;
  if (version != 0) {
    // The reply to HELLO is already in the new protocol.
    context.session.protocol = static_cast<int>(version);
    context.reply.set_protocol(static_cast<int>(version));
  }
  write_hello_reply(context);
}

void auth(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  if (args.size() > 3) {
    context.reply.error(kErrSyntax);
    return;
  }
  std::string_view user = kDefaultUser;
  std::string_view password;
  if (args.size() == 2) {
    // Redis keeps the old error of the one-argument form when no password is configured.
    if (context.server.requirepass().empty()) {
      context.reply.error(
          "ERR AUTH <password> called without any password configured for the default user. "
          "Are you sure your configuration is correct?");
      return;
    }
    password = args[1];
  } else {
    user = args[1];
    password = args[2];
  }
  if (!credentials_ok(context, user, password)) {
    context.reply.error(kWrongPass);
    return;
  }
  context.session.authenticated = true;
  context.reply.ok();
}

void quit(CommandContext& context) {
  context.session.close_after_reply = true;
  context.reply.ok();
}

void select(CommandContext& context) {
  const std::optional<int64_t> index = parse_int64(context.args[1]);
  if (!index || *index < INT32_MIN || *index > INT32_MAX) {
    context.reply.error(kErrNotInteger);
    return;
  }
  // Cairn has one database: the keyspace is partitioned across machines, not into numbers.
  if (*index != 0) {
    context.reply.error("ERR DB index is out of range");
    return;
  }
  context.reply.ok();
}

void client_id(CommandContext& context) {
  context.reply.integer(static_cast<int64_t>(context.session.id));
}

void client_setname(CommandContext& context) {
  const std::string& name = context.args[2];
  if (!valid_client_attribute(name)) {
    context.reply.error("ERR Client names cannot contain spaces, newlines or special characters.");
    return;
  }
  context.session.name = name;
  context.reply.ok();
}

void client_getname(CommandContext& context) {
  if (context.session.name.empty()) {
    context.reply.null();
  } else {
    context.reply.bulk(context.session.name);
  }
}

// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]
void client_list(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  bool everyone = true;  // TYPE master/replica/pubsub: Cairn has no such clients
  std::vector<uint64_t> ids;
  bool filter_ids = false;
  if (args.size() == 4 && equals_ignore_case(args[2], "type")) {
    const std::string& type = args[3];
    if (equals_ignore_case(type, "normal")) {
      everyone = true;
    } else if (equals_ignore_case(type, "master") || equals_ignore_case(type, "replica") ||
               equals_ignore_case(type, "slave") || equals_ignore_case(type, "pubsub")) {
      everyone = false;
    } else {
      context.reply.error("ERR Unknown client type '" + type + "'");
      return;
    }
  } else if (args.size() > 3 && equals_ignore_case(args[2], "id")) {
    filter_ids = true;
    for (size_t i = 3; i < args.size(); ++i) {
      const std::optional<int64_t> id = parse_int64(args[i]);
      if (!id || *id < 1) {
        context.reply.error("ERR Invalid client ID");
        return;
      }
      ids.push_back(static_cast<uint64_t>(*id));
    }
  } else if (args.size() != 2) {
    context.reply.error(kErrSyntax);
    return;
  }
  std::string text;
  if (everyone) {
    for (const ClientLine& client : parse_client_list(context.server.client_list())) {
      if (filter_ids && std::find(ids.begin(), ids.end(), client.id) == ids.end()) continue;
      text += client.text;
    }
  }
  write_text(context.reply, text);
}

void client_info(CommandContext& context) {
  write_text(context.reply, context.server.client_info(context.session));
}

// Marks `client` for closing, or, if it is this connection, closes after the reply.
void kill_one(CommandContext& context, const ClientLine& client) {
  if (client.id == context.session.id) {
    context.session.close_after_reply = true;
  } else {
    context.server.kill_client(client.id);
  }
}

// CLIENT KILL <ip:port> | CLIENT KILL [ID id] [ADDR a] [LADDR a] [TYPE t] [USER u] [SKIPME yes|no]
void client_kill(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  if (args.size() == 3) {
    // The old form: one address; +OK or an error; it may close this very connection.
    for (const ClientLine& client : parse_client_list(context.server.client_list())) {
      if (client.addr == args[2]) {
        kill_one(context, client);
        context.reply.ok();
        return;
      }
    }
    context.reply.error("ERR No such client");
    return;
  }
  uint64_t id = 0;
  const std::string* addr = nullptr;
  const std::string* laddr = nullptr;
  bool skip_me = true;
  bool type_matches = true;
  bool user_matches = true;
  for (size_t i = 2; i < args.size(); i += 2) {
    const bool more = i + 1 < args.size();
    if (!more) {
      context.reply.error(kErrSyntax);
      return;
    }
    const std::string& option = args[i];
    const std::string& value = args[i + 1];
    if (equals_ignore_case(option, "id")) {
      const std::optional<int64_t> parsed = parse_int64(value);
      if (!parsed || *parsed < 1) {
        context.reply.error("ERR client-id should be greater than 0");
        return;
      }
      id = static_cast<uint64_t>(*parsed);
    } else if (equals_ignore_case(option, "type")) {
      if (equals_ignore_case(value, "normal")) {
        type_matches = true;
      } else if (equals_ignore_case(value, "master") || equals_ignore_case(value, "replica") ||
                 equals_ignore_case(value, "slave") || equals_ignore_case(value, "pubsub")) {
        type_matches = false;
      } else {
        context.reply.error("ERR Unknown client type '" + value + "'");
        return;
      }
    } else if (equals_ignore_case(option, "addr")) {
      addr = &value;
    } else if (equals_ignore_case(option, "laddr")) {
      laddr = &value;
    } else if (equals_ignore_case(option, "user")) {
      if (value != kDefaultUser) {
        context.reply.error("ERR No such user '" + value + "'");
        return;
      }
      user_matches = true;
    } else if (equals_ignore_case(option, "skipme")) {
      if (equals_ignore_case(value, "yes")) {
        skip_me = true;
      } else if (equals_ignore_case(value, "no")) {
        skip_me = false;
      } else {
        context.reply.error(kErrSyntax);
        return;
      }
    } else {
      context.reply.error(kErrSyntax);
      return;
    }
  }
  int64_t killed = 0;
  if (type_matches && user_matches) {
    for (const ClientLine& client : parse_client_list(context.server.client_list())) {
      if (id != 0 && client.id != id) continue;
      if (addr != nullptr && client.addr != *addr) continue;
      if (laddr != nullptr && client.laddr != *laddr) continue;
      if (skip_me && client.id == context.session.id) continue;
      kill_one(context, client);
      ++killed;
    }
  }
  context.reply.integer(killed);
}

// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2; clients send it on connect).
void client_setinfo(CommandContext& context) {
  const std::string& attribute = context.args[2];
  const std::string& value = context.args[3];
  std::string* destination = nullptr;
  if (equals_ignore_case(attribute, "lib-name")) {
    destination = &context.session.library_name;
  } else if (equals_ignore_case(attribute, "lib-ver")) {
    destination = &context.session.library_version;
  } else {
    context.reply.error("ERR Unrecognized option '" + attribute + "'");
    return;
  }
  if (!valid_client_attribute(value)) {
    context.reply.error("ERR " + attribute +
                        " cannot contain spaces, newlines or special characters.");
    return;
  }
  *destination = value;
  context.reply.ok();
}

// CLIENT NO-EVICT ON|OFF: Cairn does not evict clients, so both are accepted and change nothing.
void client_no_evict(CommandContext& context) {
  const std::string& value = context.args[2];
  if (equals_ignore_case(value, "on") || equals_ignore_case(value, "off")) {
    context.reply.ok();
  } else {
    context.reply.error(kErrSyntax);
  }
}

// CLIENT REPLY ON is what a connection already does; OFF and SKIP would need the server to drop
// replies, which Cairn does not do, so they are refused rather than silently ignored.
void client_reply(CommandContext& context) {
  const std::string& value = context.args[2];
  if (equals_ignore_case(value, "on")) {
    context.reply.ok();
  } else if (equals_ignore_case(value, "off") || equals_ignore_case(value, "skip")) {
    context.reply.error("ERR CLIENT REPLY OFF and SKIP are not supported");
  } else {
    context.reply.error(kErrSyntax);
  }
}

// CLIENT UNBLOCK <id> [TIMEOUT|ERROR]
void client_unblock(CommandContext& context) {
  const std::vector<std::string>& args = context.args;
  if (args.size() > 4) {
    context.reply.error(kErrSyntax);
    return;
  }
  const std::optional<int64_t> id = parse_int64(args[2]);
  if (!id) {
    context.reply.error("ERR value is not an integer or out of range");
    return;
  }
  bool error = false;
  if (args.size() == 4) {
    if (equals_ignore_case(args[3], "error")) {
      error = true;
    } else if (!equals_ignore_case(args[3], "timeout")) {
      context.reply.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
      return;
    }
  }
  const int unblocked = *id > 0 ? context.server.unblock_client(static_cast<uint64_t>(*id), error)
                                : 0;
  context.reply.integer(unblocked);
}

void client_help(CommandContext& context) {
  write_help(context.reply, "CLIENT",
             {
                 "GETNAME",
                 "    Return the name of the current connection.",
                 "ID",
                 "    Return the ID of the current connection.",
                 "INFO",
                 "    Return information about the current client connection.",
                 "KILL <ip:port>",
                 "    Kill connection made from <ip:port>.",
                 "KILL <option> <value> [<option> <value> [...]]",
                 "    Kill connections. Options are:",
                 "    * ADDR (<ip:port>|<unixsocket>:0)",
                 "      Kill connections made from the specified address",
                 "    * LADDR (<ip:port>|<unixsocket>:0)",
                 "      Kill connections made to specified local address",
                 "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                 "      Kill connections by type.",
                 "    * USER <username>",
                 "      Kill connections authenticated by <username>.",
                 "    * SKIPME (YES|NO)",
                 "      Skip killing current connection (default: yes).",
                 "LIST [options ...]",
                 "    Return information about client connections. Options:",
                 "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                 "      Return clients of specified type.",
                 "REPLY (ON|OFF|SKIP)",
                 "    Control the replies sent to the current connection (only ON is supported).",
                 "SETNAME <name>",
                 "    Assign the name <name> to the current connection.",
                 "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                 "    Unblock the specified blocked client.",
                 "SETINFO <option> <value>",
                 "    Set client meta attr. Options are:",
                 "    * LIB-NAME: the client lib name.",
                 "    * LIB-VER: the client lib version.",
                 "NO-EVICT (ON|OFF)",
                 "    Protect current client connection from eviction.",
             });
}

constexpr uint32_t kHandshakeFlags = kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy;
constexpr uint32_t kClientFlags = kNoScript | kLoading | kStale;
constexpr uint32_t kClientAdminFlags = kAdmin | kNoScript | kLoading | kStale;

CommandSpec spec(std::string name, int arity, uint32_t flags, std::string summary,
                 std::string since, std::string complexity, Handler handler) {
  return make_command_spec("connection", std::move(name), arity, flags, std::move(summary),
                           std::move(since), std::move(complexity), std::move(handler));
}

CommandSpec client_container() {
  CommandSpec client = spec("client", -2, 0, "A container for client connection commands", "2.4.0",
                            "Depends on subcommand.", nullptr);
  auto& subs = client.subcommands;
  subs.push_back(spec("client|id", 2, kClientFlags,
                      "Returns the client ID for the current connection", "5.0.0", "O(1)",
                      client_id));
  subs.push_back(spec("client|setname", 3, kClientFlags, "Set the current connection name",
                      "2.6.9", "O(1)", client_setname));
  subs.push_back(spec("client|getname", 2, kClientFlags, "Get the current connection name",
                      "2.6.9", "O(1)", client_getname));
  CommandSpec list = spec("client|list", -2, kClientAdminFlags,
                          "Get the list of client connections", "2.4.0",
                          "O(N) where N is the number of client connections", client_list);
  list.tips = {"nondeterministic_output"};
  subs.push_back(std::move(list));
  CommandSpec info = spec("client|info", 2, kClientFlags,
                          "Returns information about the current client connection.", "6.2.0",
                          "O(1)", client_info);
  info.tips = {"nondeterministic_output"};
  subs.push_back(std::move(info));
  subs.push_back(spec("client|kill", -3, kClientAdminFlags, "Kill the connection of a client",
                      "2.4.0", "O(N) where N is the number of client connections", client_kill));
  subs.push_back(spec("client|unblock", -3, kClientAdminFlags,
                      "Unblock a client blocked in a blocking command from a different connection",
                      "5.0.0", "O(log N) where N is the number of client connections",
                      client_unblock));
  subs.push_back(spec("client|setinfo", 4, kClientFlags,
                      "Set client or connection specific info", "7.2.0", "O(1)",
                      client_setinfo));
  subs.push_back(spec("client|no-evict", 3, kClientAdminFlags,
                      "Set client eviction mode for the current connection", "7.0.0", "O(1)",
                      client_no_evict));
  subs.push_back(spec("client|reply", 3, kClientFlags,
                      "Instruct the server whether to reply to commands", "3.2.0", "O(1)",
                      client_reply));
  // Client-side caching (docs/tracking.md): the server's tracking registry does the work.
  const Handler tracking = [](CommandContext& context) {
    context.server.client_tracking_command(context.session, context.args, context.reply);
  };
  subs.push_back(spec("client|tracking", -3, kClientFlags,
                      "Enable or disable server assisted client side caching support", "6.0.0",
                      "O(1). Some options may introduce additional complexity.", tracking));
  subs.push_back(spec("client|caching", 3, kClientFlags,
                      "Instruct the server about tracking or not keys in the next request",
                      "6.0.0", "O(1)", tracking));
  subs.push_back(spec("client|getredir", 2, kClientFlags,
                      "Get tracking notifications redirection client ID if any", "6.0.0", "O(1)",
                      tracking));
  subs.push_back(spec("client|trackinginfo", 2, kClientFlags,
                      "Return information about server assisted client side caching for the "
                      "current connection",
                      "6.2.0", "O(1)", tracking));
  subs.push_back(spec("client|help", 2, kLoading | kStale,
                      "Show helpful text about the different subcommands", "5.0.0", "O(1)",
                      client_help));
  return client;
}

}  // namespace

void register_connection_commands(CommandTable& table) {
  CommandSpec ping_spec = spec("ping", -1, kFast, "Ping the server", "1.0.0", "O(1)", ping);
  ping_spec.tips = {"request_policy:all_shards", "response_policy:all_succeeded"};
  table.add(std::move(ping_spec));
  table.add(spec("echo", 2, kLoading | kStale | kFast, "Echo the given string", "1.0.0", "O(1)",
                 echo));
  table.add(spec("hello", -1, kHandshakeFlags, "Handshake with Redis", "6.0.0", "O(1)", hello));
  table.add(spec("auth", -2, kHandshakeFlags, "Authenticate to the server", "1.0.0",
                 "O(N) where N is the number of passwords defined for the user", auth));
  table.add(spec("quit", -1, kHandshakeFlags, "Close the connection", "1.0.0", "O(1)", quit));
  table.add(spec("select", 2, kLoading | kStale | kFast,
                 "Change the selected database for the current connection", "1.0.0", "O(1)",
                 select));
  table.add(client_container());
}

}  // namespace cairn::commands
