#include "net/http_stream.h"

#include <fmt/format.h>

#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <limits>
#include <optional>

#include "net/asio.h"
#include "net/http_message.h"

namespace cairn::net {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

constexpr size_t kReadBytes = 16 * 1024;

}  // namespace

// ---- HttpResponseStream ---------------------------------------------------------------------

struct HttpResponseStream::Impl {
  Impl(BodyCallback callback, size_t error_max)
      : on_body(std::move(callback)), error_body_bytes_max(error_max) {
    parser.header_limit(static_cast<std::uint32_t>(kHttpStreamHeaderBytesMax));
    // Set once the header says what the body is. Not boost::none: Boost 1.74's parser compares a
    // Content-Length with an empty limit as if the limit were smaller than any length.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.eager(false);             // put() stops after the header: the body is set up then
    chunk_body = [this](std::uint64_t, beast::string_view piece, beast::error_code& ec) {
      return on_chunk_body(piece, ec);
    };
    parser.on_chunk_body(chunk_body);
  }

  size_t on_chunk_body(beast::string_view piece, beast::error_code& ec) {
    if (streaming) {
      Status fed = on_body(std::string_view(piece.data(), piece.size()));
      if (!fed.is_ok()) {
        body_error = std::move(fed);
        ec = asio::error::operation_aborted;
        return 0;
      }
      return piece.size();
    }
    if (error_body.size() + piece.size() > error_body_bytes_max) {
      ec = http::error::body_limit;
      return 0;
    }
    error_body.append(piece.data(), piece.size());
    return piece.size();
  }

  // Once the header is read: a 200 chunked body streams to the callback unbounded here (the
  // callback bounds its messages); every other body is kept, bounded (invariant 1).
  Status set_up_body() {
    body_set_up = true;
    status = static_cast<int>(parser.get().result_int());
    streaming = status == 200 && parser.chunked();
    if (streaming) return Status::ok();
    if (parser.content_length() && *parser.content_length() > error_body_bytes_max) {
      return Status::corruption(fmt::format("an HTTP response body of {} bytes (at most {})",
                                            *parser.content_length(), error_body_bytes_max));
    }
    parser.body_limit(error_body_bytes_max);
    return Status::ok();
  }

  // A complete response that did not stream (not chunked): a 200's body goes to the callback
  // whole, any other's is kept for error_body().
  Status complete() {
    if (streaming || delivered) return Status::ok();
    delivered = true;
    if (!parser.chunked()) error_body = std::move(parser.get().body());
    if (status == 200) return on_body(error_body);
    return Status::ok();
  }

  Status fail(Status status_) {
    failure = std::move(status_);
    return *failure;
  }

  BodyCallback on_body;
  const size_t error_body_bytes_max;
  http::response_parser<http::string_body> parser;
  std::function<size_t(std::uint64_t, beast::string_view, beast::error_code&)> chunk_body;
  std::string pending;  // bytes the parser has not consumed yet
  std::string error_body;
  std::optional<Status> failure;
  Status body_error = Status::ok();
  bool body_set_up = false;
  bool streaming = false;
  bool delivered = false;
  int status = 0;
};

HttpResponseStream::HttpResponseStream(BodyCallback on_body, size_t error_body_bytes_max)
    : impl_(std::make_unique<Impl>(std::move(on_body), error_body_bytes_max)) {}

HttpResponseStream::~HttpResponseStream() = default;

Status HttpResponseStream::feed(std::string_view bytes) {
  Impl& s = *impl_;
  if (s.failure) return *s.failure;
  if (s.parser.is_done()) return Status::ok();  // bytes past the response are ignored
  s.pending.append(bytes);
  size_t offset = 0;
  while (!s.parser.is_done() && offset < s.pending.size()) {
    beast::error_code ec;
    const size_t used =
        s.parser.put(asio::buffer(s.pending.data() + offset, s.pending.size() - offset), ec);
    offset += used;
    if (ec == http::error::need_more) break;
    if (ec) {
      if (!s.body_error.is_ok()) return s.fail(s.body_error);
      return s.fail(Status::corruption("a malformed HTTP response: " + ec.message()));
    }
    if (s.parser.is_header_done() && !s.body_set_up) {
      Status set_up = s.set_up_body();
      if (!set_up.is_ok()) return s.fail(std::move(set_up));
    }
    if (used == 0) break;
  }
  s.pending.erase(0, offset);
  if (s.pending.size() > kHttpStreamPendingBytesMax) {
    return s.fail(Status::corruption(
        fmt::format("an HTTP response with more than {} bytes the parser cannot consume",
                    kHttpStreamPendingBytesMax)));
  }
  if (s.parser.is_done()) {
    Status completed = s.complete();
    if (!completed.is_ok()) return s.fail(std::move(completed));
  }
  return Status::ok();
}

Status HttpResponseStream::finish() {
  Impl& s = *impl_;
  if (s.failure) return *s.failure;
  if (!s.parser.is_done() && s.parser.is_header_done() && s.pending.empty()) {
    // A body delimited by the end of the connection (no length, not chunked) ends here.
    beast::error_code ec;
    s.parser.put_eof(ec);
  }
  if (!s.parser.is_done()) {
    return s.fail(Status::unavailable(s.parser.is_header_done()
                                          ? "the connection ended in the middle of the response"
                                          : "the connection ended before a response header"));
  }
  Status completed = s.complete();
  if (!completed.is_ok()) return s.fail(std::move(completed));
  return Status::ok();
}

bool HttpResponseStream::header_done() const { return impl_->parser.is_header_done(); }
bool HttpResponseStream::done() const { return impl_->parser.is_done(); }
int HttpResponseStream::status_code() const { return impl_->status; }
const std::string& HttpResponseStream::error_body() const { return impl_->error_body; }

// ---- HttpStreamCall -------------------------------------------------------------------------

struct HttpStreamCall::Impl {
  std::mutex mu;
  bool cancelled = false;
  asio::io_context* running = nullptr;  // the current run()'s, under mu
};

HttpStreamCall::HttpStreamCall() : impl_(std::make_unique<Impl>()) {}
HttpStreamCall::~HttpStreamCall() = default;

void HttpStreamCall::cancel() {
  std::lock_guard lock(impl_->mu);
  impl_->cancelled = true;
  if (impl_->running != nullptr) impl_->running->stop();
}

Status HttpStreamCall::run(const HttpEndpoint& endpoint, const HttpRequest& request,
                           HttpByteSink& response, int connect_timeout_ms, int idle_timeout_ms) {
  // Declared first, destroyed last: handlers still queued when run() returns are destroyed with
  // it, never run against the locals below.
  asio::io_context io;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->cancelled) return Status::unavailable("cancelled");
    impl_->running = &io;
  }
  struct Unregister {
    Impl* impl;
    ~Unregister() {
      std::lock_guard lock(impl->mu);
      impl->running = nullptr;
    }
  } unregister{impl_.get()};

  beast::tcp_stream stream(io);
  tcp::resolver resolver(io);
  http::request<http::string_body> message = to_message(endpoint, request);

  std::array<char, kReadBytes> buffer;
  std::optional<Status> result;
  // Every end closes the stream, which also cancels its timer: io.run() then returns at once.
  auto end = [&](Status status) {
    result = std::move(status);
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  };
  auto fail = [&](std::string_view step, const error_code& error) {
    end(Status::unavailable(
        fmt::format("cannot reach {}: {} failed: {}", display(endpoint), step,
                    error == beast::error::timeout ? std::string("timed out") : error.message())));
  };
  std::function<void()> read_some = [&] {
    stream.expires_after(std::chrono::milliseconds(idle_timeout_ms));
    stream.async_read_some(asio::buffer(buffer), [&](const error_code& error, size_t bytes) {
      if (bytes > 0) {
        Status fed = response.feed(std::string_view(buffer.data(), bytes));
        if (!fed.is_ok()) return end(std::move(fed));
        if (response.done()) return end(Status::ok());
      }
      if (error == asio::error::eof) return end(response.finish());
      if (error == beast::error::timeout) {
        return end(Status::timed_out(
            fmt::format("{}: nothing received for {} ms", display(endpoint), idle_timeout_ms)));
      }
      if (error) return fail("reading the response", error);
      read_some();
    });
  };
  auto send = [&] {
    http::async_write(stream, message, [&](const error_code& error, size_t) {
      if (error) return fail("sending the request", error);
      read_some();
    });
  };

  stream.expires_after(std::chrono::milliseconds(connect_timeout_ms));
  error_code parse_error;
  const auto address = asio::ip::make_address(endpoint.host, parse_error);
  if (!parse_error) {
    stream.async_connect(tcp::endpoint(address, endpoint.port), [&](const error_code& error) {
      if (error) return fail("connect", error);
      send();
    });
  } else {
    resolver.async_resolve(
        endpoint.host, std::to_string(endpoint.port),
        [&](const error_code& error, const tcp::resolver::results_type& results) {
          if (error) return fail("name resolution", error);
          stream.async_connect(results, [&](const error_code& connect_error, const auto&) {
            if (connect_error) return fail("connect", connect_error);
            send();
          });
        });
  }
  io.run();
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->cancelled) return Status::unavailable("cancelled");
  }
  if (!result) return Status::unavailable(fmt::format("cannot reach {}", display(endpoint)));
  return *result;
}

}  // namespace cairn::net
