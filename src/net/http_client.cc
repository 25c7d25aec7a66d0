#include "net/http_client.h"

#include <charconv>
#include <chrono>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "net/asio.h"
#include "net/http_message.h"

namespace cairn::net {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

// Extra time io_context::run_for allows past the stream's own deadline, so the stream's timeout
// (a precise error) normally fires first and run_for is only a backstop for name resolution.
constexpr int kRunSlackMs = 200;

}  // namespace

Result<HttpEndpoint> parse_http_endpoint(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::invalid_argument(
        fmt::format("'{}' is not an address: expected host:port, e.g. 127.0.0.1:7700", text));
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port_text = text.substr(colon + 1);
  uint32_t port = 0;
  const auto [ptr, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || port_text.empty() || ec != std::errc() ||
      ptr != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return Status::invalid_argument(fmt::format(
        "'{}' is not an address: expected host:port with a port from 1 to 65535", text));
  }
  return HttpEndpoint{std::string(host), static_cast<uint16_t>(port)};
}

std::string display(const HttpEndpoint& endpoint) {
  if (endpoint.host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", endpoint.host, endpoint.port);
  }
  return fmt::format("{}:{}", endpoint.host, endpoint.port);
}

http::request<http::string_body> to_message(const HttpEndpoint& endpoint,
                                            const HttpRequest& request) {
  http::request<http::string_body> message;
  message.method(request.method == "POST" ? http::verb::post : http::verb::get);
  message.target(request.target);
  message.version(11);
  message.set(http::field::host, display(endpoint));
  message.set(http::field::user_agent, "cairn");
  message.set(http::field::connection, "close");
  if (!request.bearer.empty()) {
    message.set(http::field::authorization, "Bearer " + request.bearer);
  }
  if (!request.body.empty()) message.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : request.headers) message.set(name, value);
  message.body() = request.body;
  message.prepare_payload();
  return message;
}

Result<HttpResponse> http_call(const HttpEndpoint& endpoint, const HttpRequest& request,
                               int timeout_ms) {
  net::asio::io_context io;
  beast::tcp_stream stream(io);
  net::tcp::resolver resolver(io);
  const auto deadline = std::chrono::milliseconds(timeout_ms);

  http::request<http::string_body> message = to_message(endpoint, request);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kHttpResponseBodyBytesMax);

  std::string failure;  // the first step that failed, with its reason
  bool done = false;
  auto fail = [&](std::string_view step, const net::error_code& error) {
    failure = fmt::format("{} failed: {}", step, error.message());
  };
  auto on_read = [&](const net::error_code& error, size_t) {
    if (error) return fail("reading the response", error);
    done = true;
  };
  auto on_write = [&](const net::error_code& error, size_t) {
    if (error) return fail("sending the request", error);
    http::async_read(stream, buffer, parser, on_read);
  };
  auto send = [&] { http::async_write(stream, message, on_write); };

  stream.expires_after(deadline);
  net::error_code parse_error;
  const auto address = net::asio::ip::make_address(endpoint.host, parse_error);
  if (!parse_error) {
    stream.async_connect(net::tcp::endpoint(address, endpoint.port),
                         [&](const net::error_code& error) {
                           if (error) return fail("connect", error);
                           send();
                         });
  } else {
    resolver.async_resolve(
        endpoint.host, std::to_string(endpoint.port),
        [&](const net::error_code& error, const net::tcp::resolver::results_type& results) {
          if (error) return fail("name resolution", error);
          stream.async_connect(results,
                               [&](const net::error_code& connect_error, const auto&) {
                                 if (connect_error) return fail("connect", connect_error);
                                 send();
                               });
        });
  }
  io.run_for(deadline + std::chrono::milliseconds(kRunSlackMs));
  if (!done) {
    if (failure.empty()) failure = fmt::format("no response within {} ms", timeout_ms);
    return Status::unavailable(fmt::format("cannot reach {}: {}", display(endpoint), failure));
  }
  net::error_code ignored;
  stream.socket().shutdown(net::tcp::socket::shutdown_both, ignored);
  HttpResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  response.body = std::move(parser.get().body());
  return response;
}

}  // namespace cairn::net
