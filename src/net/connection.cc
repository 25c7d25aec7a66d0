#include "net/connection.h"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/assert.h"
#include "common/clock.h"
#include "net/event_loops.h"

namespace cairn::net {

std::string format_endpoint(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  if (address.is_v6()) {
    const auto v6 = address.to_v6();
    if (v6.is_v4_mapped()) {
      return address.to_v6().to_v4().to_string() + ":" + std::to_string(endpoint.port());
    }
    return "[" + address.to_string() + "]:" + std::to_string(endpoint.port());
  }
  return address.to_string() + ":" + std::to_string(endpoint.port());
}

Connection::Connection(EventLoop& loop, tcp::socket socket, uint64_t id)
    : loop_(loop), socket_(std::move(socket)), id_(id) {
  error_code ignored;
  // Replies are written whole and at once; Nagle would only delay them.
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);
  fd_ = static_cast<int>(socket_.native_handle());
  const auto peer = socket_.remote_endpoint(ignored);
  if (!ignored) peer_address_ = format_endpoint(peer);
  const auto local = socket_.local_endpoint(ignored);
  if (!ignored) local_address_ = format_endpoint(local);
  created_ms_ = wall_clock_ms();
  last_active_ms_.store(monotonic_ms(), std::memory_order_relaxed);
}

void Connection::start(std::unique_ptr<Protocol> protocol) {
  CAIRN_ASSERT(protocol != nullptr, "a connection needs a protocol");
  protocol_ = std::move(protocol);
  input_.resize(kReadChunkBytes);
  input_capacity_.store(input_.size(), std::memory_order_relaxed);
  loop_.add(shared_from_this());
  maybe_read();
}

void Connection::kill() {
  asio::post(loop_.context(), [self = shared_from_this()] {
    if (self->closed_) return;
    // A connection waiting for a wake (a blocked BLPOP) or a worker would only close once that
    // ends — never, for BLPOP q 0. Killed, it closes now, as Redis frees a killed client; a
    // command on a worker still completes, its reply dropped.
    if (self->suspended_ || self->protocol_->busy()) {
      self->close();
      return;
    }
    self->close_after_output_ = true;
    self->after_output_change();
  });
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  // Pending operations complete with operation_aborted; their handlers hold a reference, so this
  // object outlives them and they see closed_.
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  protocol_->on_close();
  output_bytes_.store(0, std::memory_order_relaxed);
  // Last: the loop may hold the final reference.
  loop_.remove(id_);
}

void Connection::close_if_idle(int64_t now_ms, int64_t timeout_ms) {
  if (closed_ || now_ms - last_active_ms() <= timeout_ms) return;
  // A connection whose replies wait for output to drain, for a sync or for a worker is not idle
  // on its side.
  if (writing_ || awaiting_sync_ || suspended_ || protocol_->busy()) return;
  spdlog::debug("closing idle client id={} addr={}", id_, peer_address_);
  close();
}

void Connection::maybe_read() {
  if (closed_ || close_after_output_ || reading_) return;
  if (output_.size() + sending_.size() >= kOutputBytesMax) return;  // resumed by on_write
  if (input_end_ == input_.size()) {
    // Only unconsumed bytes (left when process() stopped at the output bound) occupy the buffer;
    // move them to the front. process() consumes partial requests itself, so this stays small.
    if (input_begin_ > 0) {
      std::memmove(input_.data(), input_.data() + input_begin_, input_end_ - input_begin_);
      input_end_ -= input_begin_;
      input_begin_ = 0;
    }
    if (input_end_ == input_.size()) return;  // full of unconsumed bytes: process() first
  }
  reading_ = true;
  // Wait for readability, then read without blocking. async_read_some would first try a
  // speculative recv, which fails with EAGAIN on almost every request/reply round trip: one
  // wasted system call per command for an unpipelined client.
  socket_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](const error_code& error) {
                       self->on_readable(error);
                     });
}

void Connection::on_readable(const error_code& error) {
  if (error) {
    on_read(error, 0);
    return;
  }
  error_code read_error;
  const size_t bytes = socket_.read_some(
      asio::buffer(input_.data() + input_end_, input_.size() - input_end_), read_error);
  if (read_error == asio::error::would_block || read_error == asio::error::try_again) {
    reading_ = false;
    maybe_read();
    return;
  }
  on_read(read_error, bytes);
}

void Connection::on_read(const error_code& error, size_t bytes) {
  reading_ = false;
  if (closed_) return;
  if (error == asio::error::eof) {
    // The client finished sending (it may only have shut down its side, as `nc` does): answer
    // what it sent, including replies still waiting for the sync or a worker, then close.
    input_ended_ = true;
    if (suspended_ || protocol_->busy()) protocol_->on_input_end_while_suspended();
    after_output_change();
    return;
  }
  if (error) {
    if (error != asio::error::connection_reset) {
      spdlog::debug("client id={} read error: {}", id_, error.message());
    }
    close();
    return;
  }
  input_end_ += bytes;
  last_active_ms_.store(monotonic_ms(), std::memory_order_relaxed);
  process_input();
}

void Connection::process_input() {
  if (closed_ || close_after_output_) return;
  if (input_begin_ < input_end_ && !suspended_) {
    const std::string_view input(input_.data() + input_begin_, input_end_ - input_begin_);
    const ProcessResult result = protocol_->process(input, output_, kOutputBytesMax);
    CAIRN_ASSERT(result.consumed <= input.size(), "process() consumed more than it was given");
    CAIRN_ASSERT(result.consumed == input.size() || result.close || result.suspend ||
                     output_.size() >= kOutputBytesMax,
                 "process() stops early only at the output bound, to suspend or to close");
    input_begin_ += result.consumed;
    if (input_begin_ == input_end_) input_begin_ = input_end_ = 0;
    if (result.close) close_after_output_ = true;
    if (result.suspend) suspended_ = true;
    note_write(result.wrote);
  }
  after_output_change();
}

void Connection::note_write(bool wrote) {
  if (wrote && loop_.group_commit() && !awaiting_sync_) {
    awaiting_sync_ = true;
    loop_.request_flush(shared_from_this());
  }
}

void Connection::deliver(std::string_view reply, bool wrote, bool close, bool resume) {
  if (resume) suspended_ = false;
  if (closed_) return;
  output_.append(reply);
  if (close) close_after_output_ = true;
  note_write(wrote);
  last_active_ms_.store(monotonic_ms(), std::memory_order_relaxed);
  after_output_change();
}

// Decides what to do next from the buffers and flags: write, close, process or read.
void Connection::after_output_change() {
  if (closed_) return;
  if (suspended_ && !close_after_output_ && protocol_->producing() &&
      output_.size() + sending_.size() < kProduceBelowBytes) {
    // The next page of a produced reply (invariant 7).
    const ProcessResult result = protocol_->produce(output_);
    if (result.close) close_after_output_ = true;
    if (!result.suspend) suspended_ = false;
  }
  if (!output_.empty() && !writing_ && !awaiting_sync_) start_write();
  const bool input_pending = input_begin_ < input_end_;
  const bool waiting = suspended_ || protocol_->busy();
  // The end of input closes the connection only once every request before it was answered.
  if (input_ended_ && !input_pending && !waiting) close_after_output_ = true;
  if (close_after_output_) {
    if (output_.empty() && !writing_ && !awaiting_sync_ && !waiting) close();
    return;
  }
  publish_buffers();
  if (input_pending && !suspended_) {
    // A previous process() stopped at the output bound or suspended; continue with what is
    // buffered once the output drained. process() either consumes everything, fills the output
    // to the bound or suspends, so this recurses at most once.
    if (output_.size() + sending_.size() < kOutputBytesMax) process_input();
    return;
  }
  // While suspended, keep reading until the input buffer is full, so a pipelining client's next
  // requests are ready when the current one completes.
  if (!input_ended_) maybe_read();
}

void Connection::on_synced(bool ok) {
  CAIRN_ASSERT(awaiting_sync_, "only waiting connections are flushed");
  awaiting_sync_ = false;
  if (closed_) return;
  if (!ok) {
    close();
    return;
  }
  after_output_change();
}

void Connection::start_write() {
  CAIRN_ASSERT(!writing_ && !output_.empty() && sending_.empty(), "one write at a time");
  sending_.swap(output_);
  writing_ = true;
  asio::async_write(socket_, asio::buffer(sending_),
                    [self = shared_from_this()](const error_code& error, size_t) {
                      self->on_write(error);
                    });
}

void Connection::on_write(const error_code& error) {
  writing_ = false;
  if (closed_) return;
  if (error) {
    spdlog::debug("client id={} write error: {}", id_, error.message());
    close();
    return;
  }
  last_active_ms_.store(monotonic_ms(), std::memory_order_relaxed);
  sending_.clear();
  if (sending_.capacity() > kBufferKeepBytes) std::string().swap(sending_);
  if (output_.empty() && output_.capacity() > kBufferKeepBytes) std::string().swap(output_);
  after_output_change();
}

void Connection::publish_buffers() {
  input_used_.store(input_end_ - input_begin_, std::memory_order_relaxed);
  output_bytes_.store(output_.size() + sending_.size(), std::memory_order_relaxed);
}

}  // namespace cairn::net
