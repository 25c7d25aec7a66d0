#include "net/http_server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cairn::net {

namespace beast = boost::beast;
namespace http = beast::http;

struct HttpServer::Shared {
  Shared(asio::io_context& io, HttpHandler h, std::string n)
      : acceptor(io), handler(std::move(h)), name(std::move(n)) {}
  tcp::acceptor acceptor;
  HttpHandler handler;
  std::string name;
  std::atomic<size_t> connections{0};
};

namespace {

asio::awaitable<void> serve_connection(std::shared_ptr<HttpServer::Shared> shared,
                                       beast::tcp_stream stream) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kRequestBytesMax);
    parser.header_limit(64 * 1024);
    stream.expires_after(std::chrono::milliseconds(kHttpIdleTimeoutMs));
    error_code ec;
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::end_of_stream) break;
    http::response<http::string_body> response;
    ServedResponse api;
    bool keep_alive = false;
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      api = ServedResponse{413, R"({"error":"request too large"})", "application/json", ""};
    } else if (ec) {
      break;  // timeouts, resets, malformed requests: nothing sensible to answer
    } else {
      const auto& request = parser.get();
      ServedRequest call;
      call.method = std::string(request.method_string());
      call.target = std::string(request.target());
      if (auto it = request.find(http::field::authorization); it != request.end()) {
        call.authorization = std::string(it->value());
      }
      call.body = request.body();
      api = shared->handler(call);
      keep_alive = request.keep_alive();
      response.version(request.version());
    }
    response.result(static_cast<unsigned>(api.status));
    response.set(http::field::server, shared->name);
    response.set(http::field::content_type, api.content_type);
    if (!api.location.empty()) response.set(http::field::location, api.location);
    response.keep_alive(keep_alive);
    response.body() = std::move(api.body);
    response.prepare_payload();
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep_alive) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  shared->connections.fetch_sub(1);
}

asio::awaitable<void> accept_loop(std::shared_ptr<HttpServer::Shared> shared) {
  for (;;) {
    error_code ec;
    tcp::socket socket = co_await shared->acceptor.async_accept(
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !shared->acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("{} http: accept failed: {}", shared->name, ec.message());
      continue;
    }
    if (shared->connections.load() >= kConnectionsMax) {
      continue;  // the socket closes as it goes out of scope
    }
    shared->connections.fetch_add(1);
    asio::co_spawn(shared->acceptor.get_executor(),
                   serve_connection(shared, beast::tcp_stream(std::move(socket))),
                   asio::detached);
  }
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(asio::io_context& io,
                                                      const std::string& bind, uint16_t port,
                                                      HttpHandler handler, std::string name) {
  error_code ec;
  auto address = asio::ip::make_address(bind, ec);
  if (ec) return Status::invalid_argument(fmt::format("bad bind address \"{}\"", bind));
  auto shared = std::make_shared<Shared>(io, std::move(handler), std::move(name));
  tcp::endpoint endpoint(address, port);
  shared->acceptor.open(endpoint.protocol(), ec);
  if (!ec) shared->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) shared->acceptor.bind(endpoint, ec);
  if (!ec) shared->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::io_error(fmt::format("cannot listen on {}:{}: {}", bind, port, ec.message()));
  }
  uint16_t bound = shared->acceptor.local_endpoint().port();
  asio::co_spawn(io, accept_loop(shared), asio::detached);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(shared), bound));
}

HttpServer::~HttpServer() { close(); }

void HttpServer::close() {
  error_code ignored;
  shared_->acceptor.close(ignored);
}

}  // namespace cairn::net
