#include "net/listener.h"

#include <future>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/assert.h"
#include "net/connection.h"

namespace cairn::net {

Result<std::unique_ptr<Listener>> Listener::open(EventLoops& loops, std::string_view bind_address,
                                                 uint16_t port, AcceptFn on_accept) {
  error_code error;
  asio::ip::address address;
  if (bind_address == "*" || bind_address.empty()) {
    address = asio::ip::address_v4::any();
  } else {
    address = asio::ip::make_address(std::string(bind_address), error);
    if (error) {
      return Status::invalid_argument("invalid bind address '" + std::string(bind_address) +
                                      "': " + error.message());
    }
  }
  const tcp::endpoint endpoint(address, port);
  tcp::acceptor acceptor(loops.loop(0).context());
  const auto fail = [&](std::string_view what) {
    return Status::io_error(fmt::format("could not {} {}: {}", what, format_endpoint(endpoint),
                                        error.message()));
  };
  if (acceptor.open(endpoint.protocol(), error)) return fail("open a socket for");
  // Lets a restarted server bind while old connections linger in TIME_WAIT, as Redis does.
  if (acceptor.set_option(tcp::acceptor::reuse_address(true), error)) return fail("configure");
  if (acceptor.bind(endpoint, error)) return fail("bind");
  if (acceptor.listen(kListenBacklog, error)) return fail("listen on");
  std::unique_ptr<Listener> listener(new Listener(loops, std::move(acceptor), std::move(on_accept)));
  return listener;
}

Listener::Listener(EventLoops& loops, tcp::acceptor acceptor, AcceptFn on_accept)
    : loops_(loops), acceptor_(std::move(acceptor)), retry_(loops.loop(0).context()),
      on_accept_(std::move(on_accept)) {
  error_code ignored;
  port_ = acceptor_.local_endpoint(ignored).port();
}

Listener::~Listener() { stop(); }

void Listener::start() {
  asio::post(loops_.loop(0).context(), [this] { accept_next(); });
}

void Listener::accept_next() {
  if (stopped_) return;
  EventLoop& target = loops_.next();
  acceptor_.async_accept(target.context(),
                         [this, &target](const error_code& error, tcp::socket socket) {
                           on_accept(error, std::move(socket), target);
                         });
}

void Listener::on_accept(const error_code& error, tcp::socket socket, EventLoop& target) {
  if (stopped_ || error == asio::error::operation_aborted) return;
  if (error) {
    // Typically EMFILE: out of file descriptors. Retrying at once would spin; wait a little.
    spdlog::warn("accept failed: {}", error.message());
    retry_.expires_after(std::chrono::milliseconds(kAcceptRetryMs));
    retry_.async_wait([this](const error_code& wait_error) {
      if (!wait_error) accept_next();
    });
    return;
  }
  on_accept_(std::move(socket), target);
  accept_next();
}

void Listener::stop() {
  if (stop_requested_) return;
  stop_requested_ = true;
  CAIRN_ASSERT(!loops_.in_loop_thread(), "Listener::stop() must not run on a loop thread");
  if (!loops_.running()) {
    close_acceptor();
    return;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  asio::post(loops_.loop(0).context(), [this, done] {
    close_acceptor();
    done->set_value();
  });
  finished.wait();
}

void Listener::close_acceptor() {
  stopped_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
}

}  // namespace cairn::net
