#include "orchestrator/etcd_client.h"

#include <fmt/format.h>

#include <charconv>
#include <type_traits>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {

namespace {

using nlohmann::json;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int alphabet_index(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// The gateway writes int64 fields as decimal strings; tolerate numbers too. Absent: 0. Member
// ids are uint64 (often above INT64_MAX), read with the same rules.
template <typename Int>
Int number_field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) return 0;
  if (std::is_signed_v<Int> ? it->is_number_integer() : it->is_number_unsigned()) {
    return it->get<Int>();
  }
  if (!it->is_string()) return 0;
  const std::string& text = it->get_ref<const std::string&>();
  Int value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

int64_t int_field(const json& object, const char* name) {
  return number_field<int64_t>(object, name);
}

uint64_t uint_field(const json& object, const char* name) {
  return number_field<uint64_t>(object, name);
}

Result<json> parse(const std::string& body, std::string_view what) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::corruption(fmt::format("etcd {}: the answer is not a JSON object", what));
  }
  return parsed;
}

// One kv of a range answer or a watch event (keys and values are base64).
Result<EtcdKeyValue> kv_from_json(const json& kv, std::string_view what) {
  EtcdKeyValue out;
  for (const char* field : {"key", "value"}) {
    auto it = kv.find(field);
    if (it == kv.end()) continue;
    if (!it->is_string()) {
      return Status::corruption(fmt::format("etcd {}: {} is not a string", what, field));
    }
    auto decoded = base64_decode(it->get_ref<const std::string&>());
    if (!decoded.is_ok()) {
      return Status::corruption(fmt::format("etcd {}: {}", what, decoded.status().message()));
    }
    (field[0] == 'k' ? out.key : out.value) = std::move(*decoded);
  }
  out.create_revision = int_field(kv, "create_revision");
  out.mod_revision = int_field(kv, "mod_revision");
  out.lease = int_field(kv, "lease");
  return out;
}

json guard_compare(const std::string& guard_key, int64_t guard_revision) {
  return json{{"key", base64_encode(guard_key)},
              {"target", "CREATE"},
              {"result", "EQUAL"},
              {"create_revision", std::to_string(guard_revision)}};
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                 (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) |
                 uint32_t{static_cast<uint8_t>(bytes[i + 2])};
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (rest == 2) n |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return Status::invalid_argument("base64: length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t n = 0;
    int padding = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      int index = 0;
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++padding;
      } else {
        if (padding > 0) return Status::invalid_argument("base64: data after padding");
        index = alphabet_index(c);
        if (index < 0) return Status::invalid_argument("base64: not a base64 character");
      }
      n = (n << 6) | static_cast<uint32_t>(index);
    }
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    if (padding < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

Result<std::vector<net::HttpEndpoint>> parse_etcd_endpoints(std::string_view list) {
  std::vector<net::HttpEndpoint> endpoints;
  // Every item between commas must be a URL: "a," and "a,,b" are refused, not shortened.
  for (bool more = true; more && endpoints.size() <= kEtcdEndpointsMax;) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    more = comma != std::string_view::npos;
    if (more) list = list.substr(comma + 1);
    if (item.starts_with("https://")) {
      return Status::invalid_argument(fmt::format(
          "--etcd {}: https is not supported (plain http on a trusted network only)", item));
    }
    if (item.starts_with("http://")) item.remove_prefix(7);
    while (item.ends_with('/')) item.remove_suffix(1);
    auto endpoint = net::parse_http_endpoint(item);
    if (!endpoint.is_ok())
      return Status::invalid_argument("--etcd: " + endpoint.status().message());
    endpoints.push_back(std::move(*endpoint));
  }
  if (endpoints.empty() || endpoints.size() > kEtcdEndpointsMax) {
    return Status::invalid_argument(
        fmt::format("--etcd needs 1 to {} endpoints (URL[,URL...])", kEtcdEndpointsMax));
  }
  return endpoints;
}

EtcdClient::EtcdClient(std::vector<net::HttpEndpoint> endpoints, int call_timeout_ms)
    : endpoints_(std::move(endpoints)), call_timeout_ms_(call_timeout_ms) {
  CAIRN_ASSERT(!endpoints_.empty(), "an etcd client needs an endpoint");
  CAIRN_ASSERT(call_timeout_ms_ > 0, "etcd calls are bounded");
}

Result<std::string> EtcdClient::post_to(const net::HttpEndpoint& endpoint, const std::string& path,
                                        const std::string& body) {
  net::HttpRequest request;
  request.method = "POST";
  request.target = path;
  request.body = body;
  auto response = net::http_call(endpoint, request, call_timeout_ms_);
  if (!response.is_ok()) return response.status();
  if (response->status != 200) {
    std::string why = response->body;
    json parsed = json::parse(response->body, nullptr, false);
    if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
      why = parsed["message"].get<std::string>();
    } else if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
      why = parsed["error"].get<std::string>();
    }
    return Status::unavailable(fmt::format("etcd {}:{} {}: {} {}", endpoint.host, endpoint.port,
                                           path, response->status, why));
  }
  return std::move(response->body);
}

Result<std::string> EtcdClient::post(const std::string& path, const std::string& body) {
  const size_t first = current_.load(std::memory_order_relaxed);
  Status last = Status::unavailable("no etcd endpoint");
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const size_t index = (first + i) % endpoints_.size();
    auto answer = post_to(endpoints_[index], path, body);
    if (answer.is_ok()) {
      current_.store(index, std::memory_order_relaxed);
      return answer;
    }
    last = answer.status();
    // Invariant 2: an answer that is an error (HTTP status) came from etcd: no retry elsewhere,
    // except for the errors a member without quorum or a stopping member gives, which no other
    // member would give.
    const bool unreachable = last.message().find("cannot reach") != std::string::npos;
    const bool no_leader = last.message().find("no leader") != std::string::npos ||
                           last.message().find("stopped") != std::string::npos;
    if (!unreachable && !no_leader) return last;
  }
  return last;
}

Result<EtcdKeyValue> etcd_kv_from_json(const nlohmann::json& kv, std::string_view what) {
  return kv_from_json(kv, what);
}

int64_t etcd_int_field(const nlohmann::json& object, const char* name) {
  return int_field(object, name);
}

std::string etcd_prefix_end(std::string_view prefix) {
  CAIRN_ASSERT(!prefix.empty(), "a prefix range needs a prefix");
  std::string end(prefix);
  // Drop trailing 0xff bytes (they cannot be incremented), then increment the last byte.
  while (!end.empty() && static_cast<uint8_t>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');  // every key from prefix on
  end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
  return end;
}

Result<EtcdRange> EtcdClient::range(const std::string& key, const std::string& range_end) {
  auto body =
      post("/v3/kv/range",
           json{{"key", base64_encode(key)}, {"range_end", base64_encode(range_end)}}.dump());
  if (!body.is_ok()) return body.status();
  auto parsed = parse(*body, "range");
  if (!parsed.is_ok()) return parsed.status();
  EtcdRange out;
  auto header = parsed->find("header");
  if (header == parsed->end() || !header->is_object()) {
    return Status::corruption("etcd range: no header in the answer");
  }
  out.revision = int_field(*header, "revision");
  if (out.revision <= 0) return Status::corruption("etcd range: no revision in the answer");
  auto kvs = parsed->find("kvs");
  if (kvs != parsed->end() && kvs->is_array()) {
    for (const json& item : *kvs) {
      if (!item.is_object()) return Status::corruption("etcd range: a kv is not an object");
      auto kv = kv_from_json(item, "range");
      if (!kv.is_ok()) return kv.status();
      out.kvs.push_back(std::move(*kv));
    }
  }
  return out;
}

Result<std::optional<EtcdKeyValue>> EtcdClient::get(const std::string& key) {
  auto body = post("/v3/kv/range", json{{"key", base64_encode(key)}}.dump());
  if (!body.is_ok()) return body.status();
  auto parsed = parse(*body, "range");
  if (!parsed.is_ok()) return parsed.status();
  auto kvs = parsed->find("kvs");
  if (kvs == parsed->end() || !kvs->is_array() || kvs->empty()) {
    return std::optional<EtcdKeyValue>();
  }
  const json& kv = (*kvs)[0];
  EtcdKeyValue out;
  if (kv.contains("value")) {
    if (!kv["value"].is_string()) return Status::corruption("etcd range: value is not a string");
    auto value = base64_decode(kv["value"].get<std::string>());
    if (!value.is_ok()) return Status::corruption("etcd range: " + value.status().message());
    out.value = std::move(*value);
  }
  out.create_revision = int_field(kv, "create_revision");
  out.mod_revision = int_field(kv, "mod_revision");
  out.lease = int_field(kv, "lease");
  return std::optional<EtcdKeyValue>(std::move(out));
}

Result<std::optional<int64_t>> EtcdClient::create(const std::string& key, const std::string& value,
                                                  int64_t lease) {
  json put{{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  json txn{{"compare", json::array({json{{"key", base64_encode(key)},
                                         {"target", "CREATE"},
                                         {"result", "EQUAL"},
                                         {"create_revision", "0"}}})},
           {"success", json::array({json{{"request_put", put}}})},
           {"failure", json::array()}};
  auto body = post("/v3/kv/txn", txn.dump());
  if (!body.is_ok()) return body.status();
  auto parsed = parse(*body, "txn");
  if (!parsed.is_ok()) return parsed.status();
  if (!parsed->value("succeeded", false)) return std::optional<int64_t>();
  // The transaction's revision is the revision the put created the key at.
  auto header = parsed->find("header");
  if (header == parsed->end() || !header->is_object()) {
    return Status::corruption("etcd txn: no header in the answer");
  }
  const int64_t revision = int_field(*header, "revision");
  if (revision <= 0) return Status::corruption("etcd txn: no revision in the answer");
  return std::optional<int64_t>(revision);
}

Result<std::optional<int64_t>> EtcdClient::put_if(const std::string& guard_key,
                                                  int64_t guard_revision, const std::string& key,
                                                  const std::string& value) {
  json txn{{"compare", json::array({guard_compare(guard_key, guard_revision)})},
           {"success", json::array({json{{"request_put", json{{"key", base64_encode(key)},
                                                              {"value", base64_encode(value)}}}}})},
           {"failure", json::array()}};
  auto body = post("/v3/kv/txn", txn.dump());
  if (!body.is_ok()) return body.status();
  auto parsed = parse(*body, "txn");
  if (!parsed.is_ok()) return parsed.status();
  if (!parsed->value("succeeded", false)) return std::optional<int64_t>();
  auto header = parsed->find("header");
  const int64_t revision =
      header != parsed->end() && header->is_object() ? int_field(*header, "revision") : 0;
  return std::optional<int64_t>(revision);
}

Result<bool> EtcdClient::delete_if(const std::string& guard_key, int64_t guard_revision,
                                   const std::string& key) {
  json txn{
      {"compare", json::array({guard_compare(guard_key, guard_revision)})},
      {"success", json::array({json{{"request_delete_range", json{{"key", base64_encode(key)}}}}})},
      {"failure", json::array()}};
  auto body = post("/v3/kv/txn", txn.dump());
  if (!body.is_ok()) return body.status();
  auto parsed = parse(*body, "txn");
  if (!parsed.is_ok()) return parsed.status();
  return parsed->value("succeeded", false);
}

Result<EtcdClient::Lease> EtcdClient::grant_lease(int64_t ttl_s) {
  auto body = post("/v3/lease/grant", json{{"TTL", std::to_string(ttl_s)}}.dump());
  if (!body.is_ok()) return body.status();
  auto parsed = parse(*body, "lease grant");
  if (!parsed.is_ok()) return parsed.status();
  Lease lease{int_field(*parsed, "ID"), int_field(*parsed, "TTL")};
  if (lease.id == 0 || lease.ttl_s <= 0) {
    return Status::unavailable(fmt::format("etcd lease grant refused: {}", *body));
  }
  return lease;
}

Result<int64_t> EtcdClient::keep_alive(int64_t lease) {
  auto body = post("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}.dump());
  if (!body.is_ok()) return body.status();
  // A streaming call: one JSON object per message, {"result": {...}}; one request, one message.
  const std::string first_line = body->substr(0, body->find('\n'));
  auto parsed = parse(first_line, "lease keepalive");
  if (!parsed.is_ok()) return parsed.status();
  auto result = parsed->find("result");
  if (result == parsed->end() || !result->is_object()) {
    if (parsed->contains("error")) {
      return Status::unavailable(fmt::format("etcd lease keepalive: {}", first_line));
    }
    return Status::corruption("etcd lease keepalive: no result in the answer");
  }
  return int_field(*result, "TTL");
}

Status EtcdClient::revoke_lease(int64_t lease) {
  auto body = post("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}.dump());
  return body.is_ok() ? Status::ok() : body.status();
}

Status EtcdClient::compact(int64_t revision) {
  auto body = post("/v3/kv/compaction", json{{"revision", std::to_string(revision)}}.dump());
  return body.is_ok() ? Status::ok() : body.status();
}

Result<std::vector<EtcdMember>> EtcdClient::members() {
  auto body = post("/v3/cluster/member/list", "{}");
  if (!body.is_ok()) return body.status();
  auto parsed = parse(*body, "member list");
  if (!parsed.is_ok()) return parsed.status();
  std::vector<EtcdMember> members;
  auto list = parsed->find("members");
  if (list == parsed->end() || !list->is_array()) return members;
  for (const json& item : *list) {
    if (!item.is_object() || members.size() >= kEtcdEndpointsMax) continue;
    EtcdMember member;
    member.name = item.value("name", "");
    auto urls = item.find("clientURLs");
    if (urls != item.end() && urls->is_array() && !urls->empty() && (*urls)[0].is_string()) {
      member.client_url = (*urls)[0].get<std::string>();
    }
    std::string address = member.client_url;
    if (address.starts_with("http://")) address = address.substr(7);
    auto endpoint = net::parse_http_endpoint(address);
    if (endpoint.is_ok()) {
      auto status = post_to(*endpoint, "/v3/maintenance/status", "{}");
      if (status.is_ok()) {
        auto status_json = parse(*status, "status");
        if (status_json.is_ok()) {
          auto header = status_json->find("header");
          const uint64_t self = header != status_json->end() ? uint_field(*header, "member_id") : 0;
          const uint64_t raft_leader = uint_field(*status_json, "leader");
          // A member that answers but knows no raft leader has lost quorum: not healthy.
          member.healthy = raft_leader != 0;
          member.leader = self != 0 && self == raft_leader;
        }
      }
    }
    members.push_back(std::move(member));
  }
  return members;
}

}  // namespace cairn::orchestrator
