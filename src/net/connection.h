#pragma once
// A client connection: socket I/O, bounded buffers, backpressure, group commit and closing. What
// the bytes mean is the Protocol's business (the RESP session lives in src/server).
//
// Life cycle: accepted on the acceptor's loop, then start()ed on its own loop, where every
// callback runs. Reads go into a fixed buffer; the Protocol consumes what it can and appends its
// replies to the output buffer. Replies are written at once, or, when a write was served and the
// loop does group commit, after the loop's next sync (see event_loops.h).
//
// Invariants:
//  1. At most one read and one write are in flight.
//  2. No byte of output produced after a write is sent before the sync that follows that write.
//  3. While the unsent output exceeds kOutputBytesMax, nothing more is read (backpressure).
//  4. After close() no callback touches the socket or the Protocol again.
//  5. While suspended (the Protocol cannot take more requests until some running elsewhere, e.g.
//     on worker threads, complete), process() is not called. Reading continues until the input
//     buffer is full; an end of input is acted on once nothing is suspended or busy.
//  7. While the Protocol is producing a reply (Protocol::producing()), it is suspended, and its
//     next page is appended only when less than kProduceBelowBytes of output is unsent, so a
//     big reply holds about that much memory here, not its whole size.
//  6. The Protocol orders replies: those of requests that ran elsewhere come back through
//     deliver() in request order. While it is busy (Protocol::busy()), the connection is neither
//     idle nor closed for an end of input or a kill before those replies are out.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/asio.h"

namespace cairn::net {

class EventLoop;

struct ProcessResult {
  size_t consumed = 0;  // bytes of input used; the rest is offered again later
  bool wrote = false;   // a write was served: its reply must wait for the sync
  bool close = false;   // close once the output is sent (QUIT, protocol error, limits)
  // The protocol cannot take more requests now (they wait for requests running on other
  // threads): process() is not called again until deliver(..., resume = true).
  bool suspend = false;
};

// The meaning of a connection's bytes. Called on the connection's loop thread only.
class Protocol {
 public:
  virtual ~Protocol() = default;
  // Consumes requests from `input` and appends their replies to `output`. Consumes all of
  // `input` (buffering partial requests itself) unless it asks to close or to suspend, or
  // `output` reached `output_bytes_max` bytes; unconsumed input is offered again once the output
  // drained or the connection resumed.
  virtual ProcessResult process(std::string_view input, std::string& output,
                                size_t output_bytes_max) = 0;
  // The connection closed (by either side); called exactly once.
  virtual void on_close() = 0;
  // Requests consumed by process() still run elsewhere; their replies will be delivered.
  virtual bool busy() const { return false; }
  // The peer finished sending while the connection was suspended (a client waiting in a
  // blocking command went away): the protocol may end the suspension early.
  virtual void on_input_end_while_suspended() {}
  // A reply still being produced (a big listing): while this is true the protocol is
  // suspended, and the connection calls produce() whenever less than kProduceBelowBytes of its
  // output is unsent. produce() appends the next page to `output`; its result's `suspend` says
  // whether more remains (false: the suspension ends), `close` that the reply cannot be
  // finished.
  virtual bool producing() const { return false; }
  virtual ProcessResult produce(std::string& /*output*/) { return {}; }
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  static constexpr size_t kReadChunkBytes = 16 * 1024;        // as Redis's PROTO_IOBUF_LEN
  static constexpr size_t kOutputBytesMax = 64 * 1024 * 1024;  // stop reading above this
  // A produced reply's next page is asked for below this much unsent output.
  static constexpr size_t kProduceBelowBytes = 1024 * 1024;
  // Buffers larger than this are released once drained, so idle clients hold little memory.
  static constexpr size_t kBufferKeepBytes = 1024 * 1024;

  // `socket` must belong to `loop`'s io_context. Any thread.
  Connection(EventLoop& loop, tcp::socket socket, uint64_t id);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Loop thread. Registers with the loop and starts reading.
  void start(std::unique_ptr<Protocol> protocol);
  // Any thread: stops reading and closes once the pending output is sent (CLIENT KILL); a
  // connection waiting for a wake or a worker closes at once.
  void kill();
  // Loop thread: closes now, dropping unsent output.
  void close();
  // Loop thread: called by the loop's flush task after its sync.
  void on_synced(bool ok);
  // Loop thread: closes the connection if it has been idle longer than `timeout_ms`.
  void close_if_idle(int64_t now_ms, int64_t timeout_ms);
  // Loop thread: appends the reply of a request that ran elsewhere (the Protocol calls it in
  // request order). `wrote`: the reply waits for the loop's next sync; `close`: close once the
  // output is sent; `resume`: ends a suspension (ProcessResult::suspend) and processes the input
  // that arrived meanwhile.
  void deliver(std::string_view reply, bool wrote, bool close, bool resume);
  // Loop thread.
  bool closed() const { return closed_; }
  bool suspended() const { return suspended_; }
  // Loop thread: the peer finished sending (its requests are still answered).
  bool input_ended() const { return input_ended_; }

  // Immutable after construction; any thread.
  uint64_t id() const { return id_; }
  int fd() const { return fd_; }
  const std::string& peer_address() const { return peer_address_; }
  const std::string& local_address() const { return local_address_; }
  int64_t created_ms() const { return created_ms_; }
  EventLoop& loop() { return loop_; }

  // Observations for CLIENT LIST, refreshed once per read or write; any thread.
  size_t input_buffer_bytes() const { return input_capacity_.load(std::memory_order_relaxed); }
  size_t input_unconsumed_bytes() const { return input_used_.load(std::memory_order_relaxed); }
  size_t output_bytes() const { return output_bytes_.load(std::memory_order_relaxed); }
  int64_t last_active_ms() const { return last_active_ms_.load(std::memory_order_relaxed); }

 private:
  void maybe_read();
  void on_readable(const error_code& error);
  void on_read(const error_code& error, size_t bytes);
  void process_input();
  void note_write(bool wrote);
  void after_output_change();
  void start_write();
  void on_write(const error_code& error);
  void publish_buffers();

  EventLoop& loop_;
  tcp::socket socket_;
  const uint64_t id_;
  int fd_ = -1;
  std::string peer_address_;
  std::string local_address_;
  int64_t created_ms_ = 0;
  std::unique_ptr<Protocol> protocol_;

  // input_[input_begin_, input_end_) holds bytes read and not yet consumed.
  std::string input_;
  size_t input_begin_ = 0;
  size_t input_end_ = 0;
  std::string output_;   // replies not yet handed to the socket
  std::string sending_;  // the replies of the write in flight

  bool reading_ = false;
  bool writing_ = false;
  bool awaiting_sync_ = false;  // output_ holds replies of writes: wait for the loop's flush
  bool close_after_output_ = false;
  bool closed_ = false;
  bool suspended_ = false;  // invariant 5
  bool input_ended_ = false;  // the peer finished sending; close once everything is answered

  std::atomic<size_t> input_capacity_{0};
  std::atomic<size_t> input_used_{0};
  std::atomic<size_t> output_bytes_{0};
  std::atomic<int64_t> last_active_ms_{0};
};

// "ip:port", with IPv6 addresses in brackets as redis-server prints them.
std::string format_endpoint(const tcp::endpoint& endpoint);

}  // namespace cairn::net
