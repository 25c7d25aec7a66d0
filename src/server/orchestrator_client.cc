#include "server/orchestrator_client.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace cairn::server {

namespace {

std::string display(const net::HttpEndpoint& endpoint) {
  return fmt::format("{}:{}", endpoint.host, endpoint.port);
}

// The "leader" a follower's 307 names; nullopt when absent or not an address.
std::optional<net::HttpEndpoint> redirected_leader(const net::HttpResponse& response) {
  auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("leader") || !body["leader"].is_string()) {
    return std::nullopt;
  }
  auto endpoint = net::parse_http_endpoint(body["leader"].get<std::string>());
  if (!endpoint.is_ok()) return std::nullopt;
  return *endpoint;
}

}  // namespace

Result<std::vector<net::HttpEndpoint>> parse_orchestrator_list(std::string_view list) {
  std::vector<net::HttpEndpoint> endpoints;
  // Every item between commas must be an address: "a," and "a,,b" are refused, not shortened.
  while (endpoints.size() <= kOrchestratorsMax) {
    const size_t comma = list.find(',');
    auto endpoint = net::parse_http_endpoint(list.substr(0, comma));
    if (!endpoint.is_ok()) return endpoint.status();
    endpoints.push_back(std::move(*endpoint));
    if (comma == std::string_view::npos) break;
    list = list.substr(comma + 1);
  }
  if (endpoints.empty() || endpoints.size() > kOrchestratorsMax) {
    return Status::invalid_argument(fmt::format(
        "expected 1 to {} orchestrator addresses (host:port[,host:port...])", kOrchestratorsMax));
  }
  return endpoints;
}

OrchestratorClient::OrchestratorClient(std::vector<net::HttpEndpoint> endpoints)
    : endpoints_(std::move(endpoints)) {
  CAIRN_ASSERT(!endpoints_.empty(), "an orchestrator client needs an address");
}

std::string OrchestratorClient::current() const {
  std::lock_guard lock(mu_);
  return display(leader_ ? *leader_ : endpoints_[next_]);
}

Result<net::HttpResponse> OrchestratorClient::call(const net::HttpRequest& request,
                                                   int timeout_ms) const {
  std::optional<net::HttpEndpoint> target;
  size_t next;
  {
    std::lock_guard lock(mu_);
    target = leader_;
    next = next_;
  }
  size_t listed_tries = 0;  // invariant 1
  int redirects = 0;
  Result<net::HttpResponse> last = Status::unavailable("no orchestrator address");
  while (true) {
    bool listed = !target.has_value();
    if (listed) {
      if (listed_tries == endpoints_.size()) break;
      target = endpoints_[next];
      ++listed_tries;
    }
    last = net::http_call(*target, request, timeout_ms);
    if (last.is_ok() && last->status != 307 && last->status != 503) {
      std::lock_guard lock(mu_);  // invariant 2
      leader_ = target;
      next_ = next;
      return last;
    }
    if (last.is_ok() && last->status == 307 && redirects < kRedirectsMax) {
      auto leader = redirected_leader(*last);
      if (leader && display(*leader) != display(*target)) {
        ++redirects;
        target = leader;
        continue;
      }
    }
    // Unreachable, no leader there, or a redirect that leads nowhere: the next listed address.
    if (listed) next = (next + 1) % endpoints_.size();
    target.reset();
  }
  std::lock_guard lock(mu_);
  leader_.reset();
  next_ = next;
  return last;
}

}  // namespace cairn::server
