#include "server/pubsub.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands/glob.h"
#include "common/clock.h"
#include "net/event_loops.h"
#include "server/client_session.h"

namespace cairn::server {

using commands::PubSubKind;

namespace {

void append_bulk(std::string& out, std::string_view text) {
  fmt::format_to(std::back_inserter(out), "${}\r\n", text.size());
  out.append(text);
  out.append("\r\n");
}

// A message push in both protocols: [kind, (pattern,) channel, payload].
std::shared_ptr<const PubSubMessage> encode(std::string_view kind, const std::string* pattern,
                                            std::string_view channel, std::string_view payload) {
  auto message = std::make_shared<PubSubMessage>();
  std::string body;
  append_bulk(body, kind);
  if (pattern != nullptr) append_bulk(body, *pattern);
  append_bulk(body, channel);
  append_bulk(body, payload);
  const char count = pattern != nullptr ? '4' : '3';
  message->resp2 = std::string("*") + count + "\r\n" + body;
  message->resp3 = std::string(">") + count + "\r\n" + body;
  return message;
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    const size_t start = i;
    while (i < text.size() && text[i] != ' ') ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

}  // namespace

OutputBufferLimits parse_pubsub_limits(std::string_view value) {
  OutputBufferLimits limits;
  const std::vector<std::string> all = words(value);
  for (size_t i = 0; i + 3 < all.size(); i += 4) {
    if (all[i] != "pubsub") continue;
    limits.hard_bytes = std::stoull(all[i + 1]);
    limits.soft_bytes = std::stoull(all[i + 2]);
    limits.soft_seconds = std::stoll(all[i + 3]);
  }
  return limits;
}

Subscriber::Subscriber(std::weak_ptr<net::Connection> connection, ClientSession& session,
                       PubSub& hub)
    : connection_(std::move(connection)), session_(session), hub_(hub) {}

void Subscriber::push(std::shared_ptr<const PubSubMessage> message) {
  const uint64_t hard = hub_.hard_bytes_.load(std::memory_order_relaxed);
  bool post = false;
  {
    std::lock_guard lock(mutex_);
    if (overflowed_) return;
    if (hard != 0 && pending_bytes_ + message->resp2.size() > hard) {
      // The loop is not even draining: the connection goes at the next drain.
      overflowed_ = true;
      pending_.clear();
      pending_bytes_ = 0;
    } else {
      pending_bytes_ += message->resp2.size();
      pending_.push_back(std::move(message));
    }
    if (!drain_posted_) drain_posted_ = post = true;
  }
  if (!post) return;
  std::shared_ptr<net::Connection> connection = connection_.lock();
  if (!connection) return;
  net::asio::post(connection->loop().context(),
                  [self = shared_from_this()] { self->drain(); });
}

void Subscriber::drain() {
  std::vector<std::shared_ptr<const PubSubMessage>> messages;
  bool overflowed = false;
  {
    std::lock_guard lock(mutex_);
    messages.swap(pending_);
    pending_bytes_ = 0;
    drain_posted_ = false;
    overflowed = overflowed_;
  }
  std::shared_ptr<net::Connection> connection = connection_.lock();
  if (!connection || connection->closed()) return;
  const uint64_t hard = hub_.hard_bytes_.load(std::memory_order_relaxed);
  const uint64_t soft = hub_.soft_bytes_.load(std::memory_order_relaxed);
  const int64_t soft_seconds = hub_.soft_seconds_.load(std::memory_order_relaxed);
  if (!overflowed) {
    const bool resp3 = session_.push_protocol() == 3;
    std::string out;
    for (const auto& message : messages) out.append(resp3 ? message->resp3 : message->resp2);
    const size_t unsent = session_.deliver_push(out) + connection->output_bytes();
    const int64_t now = monotonic_ms();
    if (hard != 0 && unsent > hard) {
      overflowed = true;
    } else if (soft != 0 && unsent > soft) {
      if (soft_since_ms_ == 0) {
        soft_since_ms_ = now;
      } else if (now - soft_since_ms_ >= soft_seconds * 1000) {
        overflowed = true;
      }
    } else {
      soft_since_ms_ = 0;
    }
  }
  if (!overflowed) return;
  // As redis-server: logged, and the client closed without its pending output.
  spdlog::warn("Client id={} addr={} (pubsub) scheduled to be closed ASAP for overcoming of "
               "output buffer limits.",
               connection->id(), connection->peer_address());
  hub_.disconnected_.fetch_add(1, std::memory_order_relaxed);
  connection->close();
}

PubSub::Registry& PubSub::registry(PubSubKind kind) {
  switch (kind) {
    case PubSubKind::kChannel: return channels_;
    case PubSubKind::kPattern: return patterns_;
    case PubSubKind::kShard: return shard_channels_;
  }
  return channels_;
}

bool PubSub::change(Subscriber& subscriber, PubSubKind kind, std::string_view channel,
                    bool subscribe) {
  std::unique_lock lock(mutex_);
  const std::string name(channel);
  bool changed = false;
  if (kind == PubSubKind::kPattern) {
    auto& own = subscriber.patterns_;
    const auto it = std::find(own.begin(), own.end(), name);
    if (subscribe && it == own.end()) {
      own.push_back(name);
      changed = true;
    } else if (!subscribe && it != own.end()) {
      own.erase(it);
      changed = true;
    }
  } else {
    auto& own = kind == PubSubKind::kShard ? subscriber.shard_channels_ : subscriber.channels_;
    changed = subscribe ? own.insert(name).second : own.erase(name) > 0;
  }
  if (!changed) return false;
  Registry& names = registry(kind);
  if (subscribe) {
    names[name].push_back(&subscriber);
  } else if (auto it = names.find(name); it != names.end()) {
    std::erase(it->second, &subscriber);
    if (it->second.empty()) names.erase(it);
  }
  return true;
}

std::vector<std::string> PubSub::subscriptions(Subscriber& subscriber, PubSubKind kind) {
  std::shared_lock lock(mutex_);
  switch (kind) {
    case PubSubKind::kChannel:
      return {subscriber.channels_.begin(), subscriber.channels_.end()};
    case PubSubKind::kPattern:
      return subscriber.patterns_;
    case PubSubKind::kShard:
      return {subscriber.shard_channels_.begin(), subscriber.shard_channels_.end()};
  }
  return {};
}

PubSubCounts PubSub::counts(Subscriber& subscriber) const {
  std::shared_lock lock(mutex_);
  return {subscriber.channels_.size(), subscriber.patterns_.size(),
          subscriber.shard_channels_.size()};
}

void PubSub::remove_all(Subscriber& subscriber) {
  for (PubSubKind kind : {PubSubKind::kChannel, PubSubKind::kPattern, PubSubKind::kShard}) {
    for (const std::string& name : subscriptions(subscriber, kind)) {
      change(subscriber, kind, name, false);
    }
  }
}

int64_t PubSub::deliver(PubSubKind kind, std::string_view channel, std::string_view message) {
  std::shared_lock lock(mutex_);
  int64_t receivers = 0;
  const Registry& exact = kind == PubSubKind::kShard ? shard_channels_ : channels_;
  if (const auto it = exact.find(std::string(channel)); it != exact.end()) {
    const auto encoded =
        encode(kind == PubSubKind::kShard ? "smessage" : "message", nullptr, channel, message);
    for (Subscriber* subscriber : it->second) subscriber->push(encoded);
    receivers += static_cast<int64_t>(it->second.size());
  }
  if (kind == PubSubKind::kChannel) {
    for (const auto& [pattern, subscribers] : patterns_) {
      if (!commands::glob_match(pattern, channel)) continue;
      const auto encoded = encode("pmessage", &pattern, channel, message);
      for (Subscriber* subscriber : subscribers) subscriber->push(encoded);
      receivers += static_cast<int64_t>(subscribers.size());
    }
  }
  delivered_.fetch_add(static_cast<uint64_t>(receivers), std::memory_order_relaxed);
  return receivers;
}

std::vector<std::string> PubSub::channels(PubSubKind kind, std::string_view pattern) {
  std::shared_lock lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, subscribers] : registry(kind)) {
    if (pattern.empty() || commands::glob_match(pattern, name)) out.push_back(name);
  }
  return out;
}

int64_t PubSub::numsub(PubSubKind kind, std::string_view channel) {
  std::shared_lock lock(mutex_);
  const Registry& names = registry(kind);
  const auto it = names.find(std::string(channel));
  return it == names.end() ? 0 : static_cast<int64_t>(it->second.size());
}

int64_t PubSub::numpat() {
  std::shared_lock lock(mutex_);
  return static_cast<int64_t>(patterns_.size());
}

void PubSub::set_limits(const OutputBufferLimits& limits) {
  hard_bytes_.store(limits.hard_bytes, std::memory_order_relaxed);
  soft_bytes_.store(limits.soft_bytes, std::memory_order_relaxed);
  soft_seconds_.store(limits.soft_seconds, std::memory_order_relaxed);
}

OutputBufferLimits PubSub::limits() const {
  return {hard_bytes_.load(std::memory_order_relaxed), soft_bytes_.load(std::memory_order_relaxed),
          soft_seconds_.load(std::memory_order_relaxed)};
}

PubSubStats PubSub::stats() const {
  return {delivered_.load(std::memory_order_relaxed),
          disconnected_.load(std::memory_order_relaxed)};
}

}  // namespace cairn::server
