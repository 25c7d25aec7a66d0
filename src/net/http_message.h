#pragma once
// Shared by the one-shot HTTP client (http_client.h) and the streaming one (http_stream.h): how an
// endpoint is named in messages and how a request goes on the wire. Internal to src/net.

#include <string>

#include <boost/beast/http.hpp>

#include "net/http_client.h"

namespace cairn::net {

// "host:port", or "[host]:port" for an IPv6 literal.
std::string display(const HttpEndpoint& endpoint);

// HTTP/1.1, `Connection: close`, the bearer and extra headers of `request`, a JSON body if any.
boost::beast::http::request<boost::beast::http::string_body> to_message(
    const HttpEndpoint& endpoint, const HttpRequest& request);

}  // namespace cairn::net
