#pragma once
// The HTTP client lives in net/http_client.h (the orchestrator's etcd client uses it too, and the
// orchestrator must not link the server area). These names keep the machine-side callers short.

#include "net/http_client.h"

namespace cairn::server {

using net::HttpEndpoint;
using net::HttpRequest;
using net::HttpResponse;
using net::http_call;
using net::kHttpResponseBodyBytesMax;
using net::parse_http_endpoint;

}  // namespace cairn::server
