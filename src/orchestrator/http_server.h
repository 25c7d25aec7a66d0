#pragma once
// The orchestrator's HTTP server is the shared one of net/http_server.h.

#include "net/http_server.h"

namespace cairn::orchestrator {

using net::HttpHandler;
using net::HttpServer;
using net::kConnectionsMax;
using net::kHttpIdleTimeoutMs;
using net::kRequestBytesMax;

}  // namespace cairn::orchestrator
