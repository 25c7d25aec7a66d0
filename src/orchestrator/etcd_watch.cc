#include "orchestrator/etcd_watch.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {

namespace {

using nlohmann::json;

// An error answer's body (non-200): etcd's JSON error, small.
constexpr size_t kErrorBodyBytesMax = 64 * 1024;

}  // namespace

Result<WatchMessage> parse_watch_message(std::string_view text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::corruption("etcd watch: a message is not a JSON object");
  }
  auto error = parsed.find("error");
  if (error != parsed.end()) {
    std::string why = error->dump();
    if (error->is_object() && error->contains("message") && (*error)["message"].is_string()) {
      why = (*error)["message"].get<std::string>();
    }
    return Status::unavailable("etcd watch: " + why);
  }
  auto result = parsed.find("result");
  if (result == parsed.end() || !result->is_object()) {
    return Status::corruption("etcd watch: a message without result");
  }
  WatchMessage message;
  auto header = result->find("header");
  if (header != result->end() && header->is_object()) {
    message.revision = etcd_int_field(*header, "revision");
  }
  message.created = result->value("created", false);
  message.canceled = result->value("canceled", false);
  message.compact_revision = etcd_int_field(*result, "compact_revision");
  if (result->contains("cancel_reason") && (*result)["cancel_reason"].is_string()) {
    message.cancel_reason = (*result)["cancel_reason"].get<std::string>();
  }
  auto events = result->find("events");
  if (events != result->end()) {
    if (!events->is_array()) return Status::corruption("etcd watch: events is not an array");
    for (const json& item : *events) {
      if (!item.is_object() || !item.contains("kv") || !item["kv"].is_object()) {
        return Status::corruption("etcd watch: an event without kv");
      }
      WatchEvent event;
      // The gateway omits default values: no "type" is PUT.
      event.deleted = item.value("type", "PUT") == "DELETE";
      auto kv = etcd_kv_from_json(item["kv"], "watch");
      if (!kv.is_ok()) return kv.status();
      event.kv = std::move(*kv);
      if (event.kv.mod_revision <= 0) {
        return Status::corruption("etcd watch: an event without mod_revision");
      }
      message.events.push_back(std::move(event));
    }
  }
  return message;
}

WatchStreamDecoder::WatchStreamDecoder(OnMessage on_message, size_t message_bytes_max)
    : on_message_(std::move(on_message)), message_bytes_max_(message_bytes_max) {
  CAIRN_ASSERT(message_bytes_max_ > 0, "a watch message has a bound");
}

Status WatchStreamDecoder::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, newline);
    // Invariant 1: checked before the bytes are kept, so the buffer never exceeds the bound.
    if (partial_.size() + piece.size() > message_bytes_max_) {
      return Status::corruption(
          fmt::format("etcd watch: a message larger than {} bytes (at least {} without its end)",
                      message_bytes_max_, partial_.size() + piece.size()));
    }
    if (newline == std::string_view::npos) {
      partial_.append(piece);
      return Status::ok();
    }
    bytes.remove_prefix(newline + 1);
    std::string text;
    if (partial_.empty()) {
      text.assign(piece);
    } else {
      partial_.append(piece);
      text.swap(partial_);
    }
    // The gateway may end a message with "\r\n" or send a blank keep-alive line.
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
    if (text.empty()) continue;
    auto message = parse_watch_message(text);
    if (!message.is_ok()) return message.status();
    Status handled = on_message_(*message);
    if (!handled.is_ok()) return handled;
  }
  return Status::ok();
}

WatchResponseReader::WatchResponseReader(WatchStreamDecoder::OnMessage on_message,
                                         size_t message_bytes_max)
    : decoder_(std::move(on_message), message_bytes_max),
      http_([this](std::string_view piece) { return decoder_.feed(piece); }, kErrorBodyBytesMax) {}

Status WatchResponseReader::check_status() const {
  if (!http_.done() || http_.status_code() == 200) return Status::ok();
  std::string why = http_.error_body();
  json parsed = json::parse(why, nullptr, false);
  if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
    why = parsed["message"].get<std::string>();
  }
  return Status::unavailable(fmt::format("etcd watch: {} {}", http_.status_code(), why));
}

Status WatchResponseReader::feed(std::string_view bytes) {
  Status fed = http_.feed(bytes);
  if (!fed.is_ok()) return fed;
  return check_status();
}

Status WatchResponseReader::finish() {
  Status finished = http_.finish();
  if (!finished.is_ok()) return finished;
  Status status = check_status();
  if (!status.is_ok()) return status;
  return Status::unavailable("etcd watch: the stream ended");
}

std::string watch_request_body(const std::string& key, const std::string& range_end,
                               int64_t start_revision) {
  json create{{"key", base64_encode(key)},
              {"start_revision", std::to_string(start_revision)},
              {"fragment", true}};
  if (!range_end.empty()) create["range_end"] = base64_encode(range_end);
  return json{{"create_request", std::move(create)}}.dump();
}

EtcdWatcher::EtcdWatcher(std::shared_ptr<EtcdClient> client, WatchOptions options,
                         WatchHandler* handler)
    : client_(std::move(client)), options_(std::move(options)), handler_(handler) {
  CAIRN_ASSERT(client_ != nullptr && handler_ != nullptr, "a watcher needs etcd and a handler");
  CAIRN_ASSERT(options_.idle_timeout_ms > 0 && options_.connect_timeout_ms > 0,
               "a watch's waits are bounded");
  CAIRN_ASSERT(options_.backoff_min_ms > 0 && options_.backoff_max_ms >= options_.backoff_min_ms,
               "a watch retries after a bounded backoff");
}

EtcdWatcher::~EtcdWatcher() { stop(); }

void EtcdWatcher::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void EtcdWatcher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  call_.cancel();
  if (thread_.joinable()) thread_.join();
}

bool EtcdWatcher::sleep_ms(int64_t ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(ms, 0)),
                 [this] { return stopping_; });
  return !stopping_;
}

Status EtcdWatcher::stream_once(const net::HttpEndpoint& endpoint) {
  compacted_ = false;
  established_ = false;
  WatchResponseReader reader(
      [this](const WatchMessage& message) -> Status {
        if (message.canceled) {
          if (message.compact_revision > 0) {
            compacted_ = true;
            return Status::unavailable(
                fmt::format("etcd watch: revision {} is compacted (oldest kept: {})",
                            next_revision_, message.compact_revision));
          }
          return Status::unavailable(
              "etcd watch: cancelled by etcd: " +
              (message.cancel_reason.empty() ? std::string("no reason") : message.cancel_reason));
        }
        if (message.created && !established_) {
          established_ = true;
          handler_->on_up();
        }
        for (const WatchEvent& event : message.events) {
          // Invariant 3: the next stream starts after the last event handled.
          if (event.kv.mod_revision < next_revision_) continue;  // already seen
          next_revision_ = event.kv.mod_revision + 1;
          handler_->on_event(event);
        }
        return Status::ok();
      },
      options_.message_bytes_max);
  net::HttpRequest request;
  request.method = "POST";
  request.target = "/v3/watch";
  request.body = watch_request_body(options_.key, options_.range_end, next_revision_);
  request.headers.emplace_back("Grpc-Metadata-Hasleader", "true");  // invariant 4
  Status ended =
      call_.run(endpoint, request, reader, options_.connect_timeout_ms, options_.idle_timeout_ms);
  // A watch does not end while it is wanted: even a clean end of the response is a failure.
  if (ended.is_ok()) return Status::unavailable("etcd watch: the stream ended");
  return ended;
}

void EtcdWatcher::run() {
  const auto& endpoints = client_->endpoints();
  size_t endpoint = 0;
  bool need_snapshot = true;
  bool down = false;  // on_down was called and no stream has opened since
  int64_t backoff_ms = options_.backoff_min_ms;
  auto failed = [&](const Status& why) {
    if (!down) handler_->on_down(why);
    down = true;
    endpoint = (endpoint + 1) % endpoints.size();
    const int64_t wait = backoff_ms;
    backoff_ms = std::min(backoff_ms * 2, options_.backoff_max_ms);
    return sleep_ms(wait);
  };
  while (sleep_ms(0)) {
    if (need_snapshot) {
      auto snapshot = client_->range(options_.key, options_.range_end);
      if (!snapshot.is_ok()) {
        if (!failed(snapshot.status())) break;
        continue;
      }
      handler_->on_snapshot(snapshot->kvs, snapshot->revision);
      next_revision_ = snapshot->revision + 1;
      need_snapshot = false;
    }
    Status ended = stream_once(endpoints[endpoint]);
    if (!sleep_ms(0)) break;
    if (established_) {
      down = false;
      backoff_ms = options_.backoff_min_ms;
    }
    if (compacted_) {
      spdlog::info("orchestrator: {}: reading the keys again and watching from there",
                   ended.message());
      need_snapshot = true;
      continue;
    }
    if (established_ && ended.code() == StatusCode::kTimedOut) {
      // Invariant 2: a quiet stream is re-opened from the next revision, at once.
      spdlog::debug("orchestrator: {}; re-opening the etcd watch", ended.message());
      continue;
    }
    if (!failed(ended)) break;
  }
}

}  // namespace cairn::orchestrator
