#include "server/tracking.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "commands/parse.h"

namespace cairn::server {

using commands::equals_ignore_case;

namespace {

// Whether one of `a`, `b` is a prefix of the other (Redis's stringCheckPrefix).
bool overlap(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  return a.substr(0, n) == b.substr(0, n);
}

bool starts_with(std::string_view key, std::string_view prefix) {
  return key.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::shared_ptr<const PubSubMessage> Tracking::encode(
    const std::optional<std::vector<std::string>>& keys) {
  std::string body2;
  std::string body3;
  if (keys) {
    std::string list = fmt::format("*{}\r\n", keys->size());
    for (const std::string& key : *keys) {
      fmt::format_to(std::back_inserter(list), "${}\r\n{}\r\n", key.size(), key);
    }
    body2 = body3 = list;
  } else {
    body2 = "$-1\r\n";
    body3 = "_\r\n";
  }
  auto message = std::make_shared<PubSubMessage>();
  message->resp2 = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n" + body2;
  message->resp3 = ">2\r\n$10\r\ninvalidate\r\n" + body3;
  return message;
}

void Tracking::command(const commands::Session& session, const std::vector<std::string>& args,
                       resp::ReplyWriter& reply) {
  const std::string_view sub = args[1];
  std::lock_guard lock(mutex_);
  const auto it = clients_.find(session.id);
  Client* current = it == clients_.end() ? nullptr : &it->second;

  if (equals_ignore_case(sub, "getredir")) {
    reply.integer(current == nullptr ? -1 : static_cast<int64_t>(current->redirect));
    return;
  }
  if (equals_ignore_case(sub, "trackinginfo")) {
    reply.map(3);
    reply.bulk("flags");
    std::vector<std::string_view> flags;
    if (current == nullptr) {
      flags.push_back("off");
    } else {
      flags.push_back("on");
      if (current->bcast) flags.push_back("bcast");
      if (current->optin) flags.push_back("optin");
      if (current->optout) flags.push_back("optout");
      if (current->caching) flags.push_back(current->optin ? "caching-yes" : "caching-no");
      if (current->noloop) flags.push_back("noloop");
      if (current->redirect != 0 && !exists_(current->redirect)) flags.push_back("broken_redirect");
    }
    reply.set(flags.size());
    for (std::string_view flag : flags) reply.bulk(flag);
    reply.bulk("redirect");
    reply.integer(current == nullptr ? -1 : static_cast<int64_t>(current->redirect));
    reply.bulk("prefixes");
    std::vector<std::string> prefixes;
    if (current != nullptr) prefixes = current->prefixes;
    std::sort(prefixes.begin(), prefixes.end());
    reply.array(prefixes.size());
    for (const std::string& prefix : prefixes) reply.bulk(prefix);
    return;
  }
  if (equals_ignore_case(sub, "caching")) {
    if (current == nullptr) {
      reply.error("ERR CLIENT CACHING can be called only when the client is in tracking mode "
                  "with OPTIN or OPTOUT mode enabled");
    } else if (equals_ignore_case(args[2], "yes")) {
      if (!current->optin) {
        reply.error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        return;
      }
      current->caching = true;
      reply.ok();
    } else if (equals_ignore_case(args[2], "no")) {
      if (!current->optout) {
        reply.error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        return;
      }
      current->caching = true;
      reply.ok();
    } else {
      reply.error("ERR syntax error");
    }
    return;
  }

  // CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
  Client next;
  bool has_redirect = false;
  for (size_t j = 3; j < args.size(); ++j) {
    const bool more = j + 1 < args.size();
    if (equals_ignore_case(args[j], "redirect") && more) {
      ++j;
      if (has_redirect) {
        reply.error("ERR A client can only redirect to a single other client");
        return;
      }
      int64_t id = 0;
      const auto [end, ec] = std::from_chars(args[j].data(), args[j].data() + args[j].size(), id);
      if (ec != std::errc() || end != args[j].data() + args[j].size()) {
        reply.error("ERR value is not an integer or out of range");
        return;
      }
      if (id <= 0 || !exists_(static_cast<uint64_t>(id))) {
        reply.error("ERR The client ID you want redirect to does not exist");
        return;
      }
      has_redirect = true;
      next.redirect = static_cast<uint64_t>(id);
    } else if (equals_ignore_case(args[j], "bcast")) {
      next.bcast = true;
    } else if (equals_ignore_case(args[j], "optin")) {
      next.optin = true;
    } else if (equals_ignore_case(args[j], "optout")) {
      next.optout = true;
    } else if (equals_ignore_case(args[j], "noloop")) {
      next.noloop = true;
    } else if (equals_ignore_case(args[j], "prefix") && more) {
      next.prefixes.push_back(args[++j]);
    } else {
      reply.error("ERR syntax error");
      return;
    }
  }
  if (equals_ignore_case(args[2], "off")) {
    clients_.erase(session.id);
    refresh_active();
    reply.ok();
    return;
  }
  if (!equals_ignore_case(args[2], "on")) {
    reply.error("ERR syntax error");
    return;
  }
  if (!next.bcast && !next.prefixes.empty()) {
    reply.error("ERR PREFIX option requires BCAST mode to be enabled");
    return;
  }
  if (current != nullptr && current->bcast != next.bcast) {
    reply.error("ERR You can't switch BCAST mode on/off before disabling tracking for this "
                "client, and then re-enabling it with a different mode.");
    return;
  }
  if (next.bcast && (next.optin || next.optout)) {
    reply.error("ERR OPTIN and OPTOUT are not compatible with BCAST");
    return;
  }
  if (next.optin && next.optout) {
    reply.error("ERR You can't specify both OPTIN mode and OPTOUT mode");
    return;
  }
  if (current != nullptr &&
      ((next.optin && current->optout) || (next.optout && current->optin))) {
    reply.error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this "
                "client, and then re-enabling it with a different mode.");
    return;
  }
  if (next.bcast) {
    if (next.prefixes.empty()) next.prefixes.push_back("");
    for (size_t i = 0; i < next.prefixes.size(); ++i) {
      if (current != nullptr) {
        std::vector<std::string> existing = current->prefixes;
        std::sort(existing.begin(), existing.end());
        for (const std::string& old : existing) {
          if (overlap(old, next.prefixes[i])) {
            reply.error(fmt::format("ERR Prefix '{}' overlaps with an existing prefix '{}'. "
                                    "Prefixes for a single client must not overlap.",
                                    next.prefixes[i], old));
            return;
          }
        }
      }
      for (size_t k = i + 1; k < next.prefixes.size(); ++k) {
        if (overlap(next.prefixes[i], next.prefixes[k])) {
          reply.error(fmt::format("ERR Prefix '{}' overlaps with another provided prefix '{}'. "
                                  "Prefixes for a single client must not overlap.",
                                  next.prefixes[i], next.prefixes[k]));
          return;
        }
      }
    }
    if (current != nullptr) {
      next.prefixes.insert(next.prefixes.begin(), current->prefixes.begin(),
                           current->prefixes.end());
    }
  }
  clients_[session.id] = std::move(next);
  refresh_active();
  reply.ok();
}

void Tracking::before_command(const commands::Session& session, const commands::CommandSpec& spec,
                              const std::vector<std::string>& keys) {
  if (!active()) return;
  std::lock_guard lock(mutex_);
  const auto it = clients_.find(session.id);
  if (it == clients_.end()) return;
  Client& client = it->second;
  const bool caching = client.caching;
  // CLIENT CACHING lasts until the next command other than CLIENT (and MULTI's whole body).
  if (!session.in_multi && !spec.name.starts_with("client|")) client.caching = false;
  if ((spec.flags & commands::kReadOnly) == 0 || client.bcast) return;
  if (client.optin && !caching) return;
  if (client.optout && caching) return;
  for (const std::string& key : keys) {
    auto [entry, inserted] = table_.try_emplace(key);
    if (inserted) order_.push_back(key);
    entry->second.insert(session.id);
  }
  evict_over_limit();
}

void Tracking::evict_over_limit() {
  while (table_.size() > max_keys_ && !order_.empty()) {
    const std::string key = std::move(order_.front());
    order_.pop_front();
    const auto it = table_.find(key);
    if (it == table_.end()) continue;  // already invalidated
    const std::unordered_set<uint64_t> ids = std::move(it->second);
    table_.erase(it);
    for (uint64_t id : ids) {
      const auto client = clients_.find(id);
      if (client != clients_.end() && !client->second.bcast) send(id, client->second, {{key}});
    }
  }
  // order_ keeps keys that were invalidated meanwhile: drop them once they dominate.
  if (order_.size() > 2 * table_.size() + 1024) {
    std::deque<std::string> live;
    for (std::string& key : order_) {
      if (table_.contains(key)) live.push_back(std::move(key));
    }
    order_.swap(live);
  }
}

void Tracking::invalidate(uint64_t writer, const std::vector<std::string>& keys) {
  if (!active()) return;
  std::lock_guard lock(mutex_);
  // Default mode: one message per key and client, as Redis.
  for (const std::string& key : keys) {
    const auto it = table_.find(key);
    if (it == table_.end()) continue;
    const std::unordered_set<uint64_t> ids = std::move(it->second);
    table_.erase(it);
    for (uint64_t id : ids) {
      const auto client = clients_.find(id);
      if (client == clients_.end() || client->second.bcast) continue;
      if (client->second.noloop && id == writer) continue;
      send(id, client->second, {{key}});
    }
  }
  // BCAST: one message per client and prefix with the keys it matches.
  for (const auto& [id, client] : clients_) {
    if (!client.bcast || (client.noloop && id == writer)) continue;
    for (const std::string& prefix : client.prefixes) {
      std::vector<std::string> matching;
      for (const std::string& key : keys) {
        if (starts_with(key, prefix)) matching.push_back(key);
      }
      if (!matching.empty()) send(id, client, matching);
    }
  }
}

void Tracking::flushed(uint64_t /*writer*/) {
  std::lock_guard lock(mutex_);
  // Redis sends the null invalidation to every tracking client, NOLOOP or not.
  for (const auto& [id, client] : clients_) send(id, client, std::nullopt);
  table_.clear();
  order_.clear();
}

void Tracking::send(uint64_t id, const Client& client,
                    const std::optional<std::vector<std::string>>& keys) {
  const uint64_t target = client.redirect != 0 ? client.redirect : id;
  deliver_(target, client.redirect != 0, encode(keys));
}

void Tracking::forget(uint64_t id) {
  std::lock_guard lock(mutex_);
  clients_.erase(id);
  refresh_active();
}

void Tracking::set_max_keys(uint64_t max_keys) {
  std::lock_guard lock(mutex_);
  max_keys_ = max_keys == 0 ? UINT64_MAX : max_keys;
  evict_over_limit();
}

size_t Tracking::clients() const {
  std::lock_guard lock(mutex_);
  return clients_.size();
}

size_t Tracking::tracked_keys() const {
  std::lock_guard lock(mutex_);
  return table_.size();
}

}  // namespace cairn::server
