#pragma once
// Streaming HTTP/1.1 responses: one request whose response body is read piece by piece as it
// arrives, for as long as the server keeps it open (etcd's watch, orchestrator/etcd_watch.h).
// http_client.h reads one whole response per call and cannot do this.
//
//   HttpResponseStream  an incremental parser (Boost.Beast's) of one response: feed() it the
//                       bytes received, in pieces of any size; the body of a 200 answer is handed
//                       to a callback as it arrives; any other answer's body is kept (bounded).
//   HttpStreamCall      sends one request and feeds the socket's bytes to a HttpResponseStream
//                       until the response ends, an error, the idle deadline, or cancel().
//
// Invariants:
//  1. Bounded memory: the header is limited to kHttpStreamHeaderBytesMax, an error answer's body
//     to `error_body_bytes_max`, the bytes held between two feed() calls to what the parser
//     cannot consume yet (a partial header or chunk-size line, at most kHttpStreamPendingBytesMax);
//     a body streamed to the callback is not kept here at all (the callback bounds its own).
//  2. Bounded waits: connecting and sending take at most `connect_timeout_ms`; each read waits at
//     most `idle_timeout_ms` for the next bytes; cancel() ends a run() from another thread.
//     Name resolution of a non-numeric host is the resolver's own wait (etcd endpoints are
//     usually addresses), as in http_client.h.
//
// Threading: one thread runs a HttpStreamCall; cancel() may be called from any thread.

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"
#include "net/http_client.h"

namespace cairn::net {

inline constexpr size_t kHttpStreamHeaderBytesMax = 16 * 1024;
inline constexpr size_t kHttpStreamPendingBytesMax = 64 * 1024;

// What HttpStreamCall feeds the received bytes to.
class HttpByteSink {
 public:
  virtual ~HttpByteSink() = default;
  virtual Status feed(std::string_view bytes) = 0;
  virtual Status finish() = 0;    // the connection ended
  virtual bool done() const = 0;  // the response is complete: no more bytes are read
};

class HttpResponseStream final : public HttpByteSink {
 public:
  // Receives the body of a 200 answer in pieces as they arrive; an error ends the stream.
  using BodyCallback = std::function<Status(std::string_view piece)>;

  HttpResponseStream(BodyCallback on_body, size_t error_body_bytes_max);
  ~HttpResponseStream();
  HttpResponseStream(const HttpResponseStream&) = delete;
  HttpResponseStream& operator=(const HttpResponseStream&) = delete;

  // Parses `bytes` (the next bytes from the socket). corruption when the response is malformed
  // or larger than the bounds allow; the callback's error as it returned it. After an error the
  // stream is finished: every later feed() returns the same error.
  Status feed(std::string_view bytes) override;
  // The connection ended (EOF): ok when the response was complete, unavailable otherwise (a
  // stream cut in the middle of its body or header).
  Status finish() override;

  bool header_done() const;
  bool done() const override;  // the whole response was read (a chunked body's last chunk too)
  int status_code() const;     // 0 until the header is read
  // A non-200 answer's body (for its error text), at most error_body_bytes_max.
  const std::string& error_body() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class HttpStreamCall {
 public:
  HttpStreamCall();
  ~HttpStreamCall();
  HttpStreamCall(const HttpStreamCall&) = delete;
  HttpStreamCall& operator=(const HttpStreamCall&) = delete;

  // Connects to `endpoint`, sends `request` and feeds every byte received to `response` until
  // the response is done, feed() fails, the server closes, `idle_timeout_ms` pass without a
  // byte, or cancel(). ok only when the response was read to its end. unavailable "cannot reach
  // <host:port>: ..." for network failures and the connect deadline; timed_out when
  // `idle_timeout_ms` passed without a byte; feed()'s or finish()'s error as it returned it;
  // unavailable "cancelled" after cancel().
  Status run(const HttpEndpoint& endpoint, const HttpRequest& request, HttpByteSink& response,
             int connect_timeout_ms, int idle_timeout_ms);
  // Ends the current run() (and makes every later run() return at once): any thread.
  void cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::net
