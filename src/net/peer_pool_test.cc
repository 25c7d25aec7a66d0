#include "net/peer_pool.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/asio.h"
#include "resp/parser.h"
#include "resp/writer.h"

namespace cairn::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kSecret[] = "s3cret";

// A minimal RESP server on its own thread, standing in for a cluster machine:
//   CAIRN.AUTH s  -> +OK if s is the secret, else -NOPERM invalid cluster secret
//   ECHO x        -> x
//   PEER          -> the IP address the connection comes from
//   SLEEP ms      -> +OK after blocking the server for ms (delays every later reply)
//   HANG          -> no reply, to it or to anything after it on that connection
// In silent mode it accepts and reads but never answers.
class TestServer {
 public:
  explicit TestServer(bool silent = false, uint16_t port = 0) : silent_(silent) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() { stop(); }

  // Closes the listener and every connection (the pool sees them drop).
  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      error_code ignored;
      acceptor_.close(ignored);
      for (auto& weak : sessions_) {
        if (auto session = weak.lock()) session->socket.close(ignored);
      }
    });
    thread_.join();
  }

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }

 private:
  struct Session {
    explicit Session(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::array<char, 16 * 1024> buffer{};
    resp::RequestParser parser;
    std::vector<std::string> args;
    std::string output;
    bool hung = false;
  };

  void accept() {
    acceptor_.async_accept([this](const error_code& error, tcp::socket socket) {
      if (error) return;
      ++connections_;
      auto session = std::make_shared<Session>(std::move(socket));
      sessions_.push_back(session);
      read(session);
      accept();
    });
  }

  void read(std::shared_ptr<Session> session) {
    session->socket.async_read_some(
        asio::buffer(session->buffer), [this, session](const error_code& error, size_t bytes) {
          if (error) return;
          std::string_view input(session->buffer.data(), bytes);
          while (!input.empty()) {
            const resp::ParseOutcome outcome = session->parser.parse(input, session->args);
            if (outcome.state != resp::ParseState::kComplete) break;
            input.remove_prefix(outcome.consumed);
            if (!silent_ && !session->hung) answer(*session);
          }
          if (session->output.empty()) return read(session);
          auto out = std::make_shared<std::string>();
          out->swap(session->output);
          asio::async_write(session->socket, asio::buffer(*out),
                            [this, session, out](const error_code& write_error, size_t) {
                              if (!write_error) read(session);
                            });
        });
  }

  void answer(Session& session) {
    resp::ReplyWriter writer(&session.output);
    const auto& args = session.args;
    if (args.size() == 2 && args[0] == "CAIRN.AUTH") {
      if (args[1] == kSecret) {
        writer.ok();
      } else {
        writer.error("NOPERM invalid cluster secret");
      }
    } else if (args.size() == 2 && args[0] == "ECHO") {
      writer.bulk(args[1]);
    } else if (args.size() == 1 && args[0] == "PEER") {
      error_code ec;
      writer.bulk(session.socket.remote_endpoint(ec).address().to_string());
    } else if (args.size() == 1 && args[0] == "HANG") {
      session.hung = true;
    } else if (args.size() == 2 && args[0] == "SLEEP") {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(args[1])));
      writer.ok();
    } else {
      writer.error("ERR unknown command");
    }
  }

  bool silent_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::vector<std::weak_ptr<Session>> sessions_;
  std::thread thread_;
};

PeerPoolOptions options(std::string secret = kSecret) {
  PeerPoolOptions o;
  o.secret = std::move(secret);
  o.connect_timeout_ms = 500;
  o.reconnect_backoff_ms = 200;
  return o;
}

// A port on 127.0.0.1 where nothing listens (bound, then released).
uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

TEST(PeerPool, EchoAndStats) {
  TestServer server;
  PeerPool pool(options());
  auto reply = pool.call_sync(server.address(), {"ECHO", "hello"}, 2000);
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->type, resp::Value::Type::kBulk);
  EXPECT_EQ(reply->str, "hello");
  // A RESP error is a reply like any other, not a failure.
  auto error = pool.call_sync(server.address(), {"NOPE"}, 2000);
  ASSERT_TRUE(error.is_ok());
  EXPECT_TRUE(error->is_error());
  EXPECT_EQ(error->str, "ERR unknown command");

  const auto stats = pool.stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].address, server.address());
  EXPECT_TRUE(stats[0].connected);
  EXPECT_EQ(stats[0].requests, 2u);
  EXPECT_EQ(stats[0].failures, 0u);
  EXPECT_EQ(stats[0].pending, 0u);
  EXPECT_EQ(server.connections(), 1);
}

TEST(PeerPool, TenThousandConcurrentCallsAreMatchedInOrderOnOneConnection) {
  TestServer server;
  PeerPoolOptions o = options();
  o.threads = 2;
  PeerPool pool(o);
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 2500;
  std::atomic<int> done{0};
  std::atomic<int> wrong{0};
  std::promise<void> all_done;
  std::vector<std::thread> callers;
  for (int t = 0; t < kThreads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        std::string payload = std::to_string(t) + "-" + std::to_string(i);
        pool.call(server.address(), {"ECHO", payload}, 10'000,
                  [&, payload](Result<resp::Value> reply) {
                    if (!reply.is_ok() || reply->str != payload) ++wrong;
                    if (++done == kThreads * kCallsPerThread) all_done.set_value();
                  });
      }
    });
  }
  for (auto& caller : callers) caller.join();
  ASSERT_EQ(all_done.get_future().wait_for(20s), std::future_status::ready);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(pool.stats()[0].requests, static_cast<uint64_t>(kThreads * kCallsPerThread));
}

TEST(PeerPool, SilentPeerTimesOut) {
  TestServer server(/*silent=*/true);
  PeerPool pool(options());
  const auto start = Clock::now();
  auto reply = pool.call_sync(server.address(), {"ECHO", "x"}, 150);
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(reply.is_ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kTimedOut) << reply.status().to_string();
  EXPECT_GE(elapsed, 140ms);
  EXPECT_LT(elapsed, 1000ms);
  EXPECT_EQ(pool.stats()[0].failures, 1u);
}

TEST(PeerPool, LateReplyOfATimedOutCallIsDiscarded) {
  TestServer server;
  PeerPool pool(options());
  std::promise<Result<resp::Value>> slow;
  pool.call(server.address(), {"SLEEP", "300"}, 100,
            [&](Result<resp::Value> reply) { slow.set_value(std::move(reply)); });
  auto next = pool.call_sync(server.address(), {"ECHO", "after"}, 3000);
  auto slow_reply = slow.get_future().get();
  EXPECT_EQ(slow_reply.status().code(), StatusCode::kTimedOut);
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(next->str, "after");  // not the +OK of SLEEP
  auto again = pool.call_sync(server.address(), {"ECHO", "again"}, 3000);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->str, "again");
  EXPECT_EQ(server.connections(), 1);
}

TEST(PeerPool, RefusedConnectionFailsFastThenBacksOff) {
  PeerPool pool(options());
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  const auto start = Clock::now();
  auto first = pool.call_sync(address, {"ECHO", "x"}, 5000);
  EXPECT_LT(Clock::now() - start, 200ms);
  ASSERT_FALSE(first.is_ok());
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(first.status().message().find("peer " + address + " is unreachable: "),
            std::string::npos)
      << first.status().message();
  // Within the backoff the call fails without trying to connect, with the same reason.
  auto second = pool.call_sync(address, {"ECHO", "x"}, 5000);
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(), first.status().message());
  EXPECT_FALSE(pool.stats()[0].connected);
}

TEST(PeerPool, ReconnectsAfterThePeerComesBack) {
  auto server = std::make_unique<TestServer>();
  const uint16_t port = server->port();
  const std::string address = server->address();
  PeerPool pool(options());
  ASSERT_TRUE(pool.call_sync(address, {"ECHO", "1"}, 2000).is_ok());

  // A request outstanding when the peer goes away completes with kUnavailable.
  std::promise<Result<resp::Value>> outstanding;
  pool.call(address, {"HANG"}, 5000,
            [&](Result<resp::Value> reply) { outstanding.set_value(std::move(reply)); });
  std::this_thread::sleep_for(50ms);
  server.reset();
  auto lost = outstanding.get_future().get();
  EXPECT_EQ(lost.status().code(), StatusCode::kUnavailable) << lost.status().to_string();
  auto down = pool.call_sync(address, {"ECHO", "2"}, 2000);
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);

  server = std::make_unique<TestServer>(false, port);
  std::this_thread::sleep_for(250ms);  // past the backoff
  auto back = pool.call_sync(address, {"ECHO", "3"}, 2000);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->str, "3");
  EXPECT_TRUE(pool.stats()[0].connected);
}

TEST(PeerPool, RejectedAuthIsUnavailable) {
  TestServer server;
  PeerPool pool(options("wrong"));
  auto reply = pool.call_sync(server.address(), {"ECHO", "x"}, 2000);
  ASSERT_FALSE(reply.is_ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find("authentication rejected: NOPERM invalid cluster secret"),
            std::string::npos)
      << reply.status().message();
  EXPECT_FALSE(pool.stats()[0].connected);
}

TEST(PeerPool, QueueIsBounded) {
  TestServer server(/*silent=*/true);
  PeerPoolOptions o = options();
  o.pending_requests_max = 10;
  PeerPool pool(o);
  std::atomic<int> unavailable{0};
  for (int i = 0; i < 10; ++i) {
    pool.call(server.address(), {"ECHO", "x"}, 60'000, [&](Result<resp::Value> reply) {
      if (reply.status().code() == StatusCode::kUnavailable) ++unavailable;
    });
  }
  auto busy = pool.call_sync(server.address(), {"ECHO", "x"}, 60'000);
  EXPECT_EQ(busy.status().code(), StatusCode::kBusy) << busy.status().to_string();
  EXPECT_EQ(pool.stats()[0].pending, 10u);
  server.stop();  // the ten complete with kUnavailable
  for (int i = 0; i < 200 && unavailable.load() < 10; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(unavailable.load(), 10);
}

TEST(PeerPool, BindsOutgoingConnectionsToTheLocalAddress) {
  TestServer server;
  for (const std::string local : {"127.0.0.2", "127.0.0.3"}) {
    PeerPoolOptions o = options();
    o.local_address = local;
    PeerPool pool(o);
    auto reply = pool.call_sync(server.address(), {"PEER"}, 2000);
    ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
    EXPECT_EQ(reply->str, local);
  }
}

TEST(PeerPool, DestructorCompletesPendingCalls) {
  TestServer server(/*silent=*/true);
  std::promise<Result<resp::Value>> pending;
  {
    PeerPool pool(options());
    pool.call(server.address(), {"ECHO", "x"}, 60'000,
              [&](Result<resp::Value> reply) { pending.set_value(std::move(reply)); });
    std::this_thread::sleep_for(50ms);
  }
  auto future = pending.get_future();
  ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(future.get().status().code(), StatusCode::kUnavailable);
}

TEST(PeerPool, InvalidAddressIsAnError) {
  PeerPool pool(options());
  for (const std::string address : {"nope", "127.0.0.1:", "host:7000", "127.0.0.1:99999"}) {
    auto reply = pool.call_sync(address, {"ECHO", "x"}, 1000);
    EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument) << address;
  }
  EXPECT_TRUE(pool.stats().empty());
}

// A real redis-server, without a secret (no CAIRN.AUTH is sent): checks the pool against a
// production RESP implementation, RESP3 replies included, and that the server sees the bound
// local address. Skipped when redis-server is not installed.
TEST(PeerPool, TalksToARealRedisServer) {
  if (std::system("command -v redis-server > /dev/null 2>&1") != 0) GTEST_SKIP();
  const uint16_t port = free_port();
  const std::string command = "redis-server --port " + std::to_string(port) +
                              " --bind 127.0.0.1 --protected-mode no --save '' --appendonly no"
                              " --daemonize no"
                              " > /dev/null 2>&1 & echo $!";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  int pid = 0;
  const int scanned = fscanf(pipe, "%d", &pid);
  pclose(pipe);
  ASSERT_EQ(scanned, 1);
  // Stops the server however the test ends (an ASSERT returns early).
  struct Killer {
    int pid;
    ~Killer() {
      const int killed = std::system(("kill " + std::to_string(pid)).c_str());
      EXPECT_EQ(killed, 0);
    }
  } killer{pid};
  const std::string address = "127.0.0.1:" + std::to_string(port);
  PeerPoolOptions o = options("");
  o.local_address = "127.0.0.2";
  o.reconnect_backoff_ms = 20;
  {
    PeerPool pool(o);
    Result<resp::Value> pong = Status::unavailable("not tried");
    for (int i = 0; i < 100 && !pong.is_ok(); ++i) {
      std::this_thread::sleep_for(30ms);
      pong = pool.call_sync(address, {"PING"}, 1000);
    }
    ASSERT_TRUE(pong.is_ok()) << pong.status().to_string();
    EXPECT_EQ(pong->str, "PONG");
    auto hello = pool.call_sync(address, {"HELLO", "3"}, 1000);
    ASSERT_TRUE(hello.is_ok());
    EXPECT_EQ(hello->type, resp::Value::Type::kMap);
    auto clients = pool.call_sync(address, {"CLIENT", "LIST"}, 1000);
    ASSERT_TRUE(clients.is_ok());
    EXPECT_NE(clients->str.find("addr=127.0.0.2:"), std::string::npos) << clients->str;
  }
}

}  // namespace
}  // namespace cairn::net
