// etcd's watch stream read from raw HTTP bytes (etcd_watch.h, net/http_stream.h): a response
// recorded from etcd 3.4.23's gateway, fed in pieces split at every byte boundary; messages
// split over chunks and chunks holding several messages; oversized messages; broken, malformed
// and refused streams; and the watcher's loop (reconnect from the next revision, a new snapshot
// after a compaction) against a scripted HTTP server on loopback. The watch against a real etcd
// is covered by tests/integration/orchestrator/test_orchestrator_ha.py.

#include "orchestrator/etcd_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "net/asio.h"
#include "net/http_stream.h"
#include "orchestrator/etcd_client.h"

namespace cairn::orchestrator {
namespace {

std::string chunk(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return std::string(size) + std::string(data) + "\r\n";
}

const std::string kHeader =
    "HTTP/1.1 200 OK\r\n"
    "Access-Control-Allow-Headers: accept, content-type, authorization\r\n"
    "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n"
    "Access-Control-Allow-Origin: *\r\n"
    "Content-Type: application/json\r\n"
    "Grpc-Metadata-Content-Type: application/grpc\r\n"
    "Date: Thu, 03 Dec 2026 03:31:34 GMT\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n";

// As etcd 3.4.23 sent them for a watch on /t/state: created, a put, a delete.
const std::string kCreated =
    R"({"result":{"header":{"cluster_id":"7801232528081817440","member_id":"13458989633860879742","revision":"1","raft_term":"2"},"created":true}})"
    "\n";
const std::string kPut =
    R"({"result":{"header":{"cluster_id":"7801232528081817440","member_id":"13458989633860879742","revision":"2","raft_term":"2"},"events":[{"kv":{"key":"L3Qvc3RhdGU=","create_revision":"2","mod_revision":"2","version":"1","value":"aGVsbG8="}}]}})"
    "\n";
const std::string kDelete =
    R"({"result":{"header":{"cluster_id":"7801232528081817440","member_id":"13458989633860879742","revision":"3","raft_term":"2"},"events":[{"type":"DELETE","kv":{"key":"L3Qvc3RhdGU=","mod_revision":"3"}}]}})"
    "\n";
const std::string kCompacted =
    R"({"result":{"header":{"cluster_id":"7801232528081817440","member_id":"13458989633860879742","raft_term":"2"},"canceled":true,"compact_revision":"5"}})"
    "\n";

std::string recorded() { return kHeader + chunk(kCreated) + chunk(kPut) + chunk(kDelete); }

// Collects what a reader decodes.
struct Collected {
  std::vector<WatchMessage> messages;
  WatchStreamDecoder::OnMessage callback() {
    return [this](const WatchMessage& m) {
      messages.push_back(m);
      return Status::ok();
    };
  }
};

void expect_recorded(const std::vector<WatchMessage>& messages) {
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_TRUE(messages[0].created);
  EXPECT_EQ(messages[0].revision, 1);
  ASSERT_EQ(messages[1].events.size(), 1u);
  EXPECT_FALSE(messages[1].events[0].deleted);
  EXPECT_EQ(messages[1].events[0].kv.key, "/t/state");
  EXPECT_EQ(messages[1].events[0].kv.value, "hello");
  EXPECT_EQ(messages[1].events[0].kv.mod_revision, 2);
  EXPECT_EQ(messages[1].events[0].kv.create_revision, 2);
  ASSERT_EQ(messages[2].events.size(), 1u);
  EXPECT_TRUE(messages[2].events[0].deleted);
  EXPECT_EQ(messages[2].events[0].kv.key, "/t/state");
  EXPECT_EQ(messages[2].events[0].kv.mod_revision, 3);
}

TEST(WatchStreamTest, RecordedResponseInOnePiece) {
  Collected got;
  WatchResponseReader reader(got.callback());
  ASSERT_TRUE(reader.feed(recorded()).is_ok());
  expect_recorded(got.messages);
  EXPECT_FALSE(reader.done());  // a watch stays open
}

TEST(WatchStreamTest, RecordedResponseSplitAtEveryByteBoundary) {
  const std::string bytes = recorded();
  // Two pieces, cut at every offset: inside the status line, a header, a chunk-size line, its
  // CRLF, a message, the newline ending it, the CRLF ending the chunk.
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    Collected got;
    WatchResponseReader reader(got.callback());
    ASSERT_TRUE(reader.feed(std::string_view(bytes).substr(0, cut)).is_ok()) << cut;
    ASSERT_TRUE(reader.feed(std::string_view(bytes).substr(cut)).is_ok()) << cut;
    expect_recorded(got.messages);
  }
  // One byte at a time.
  Collected got;
  WatchResponseReader reader(got.callback());
  for (char c : bytes) ASSERT_TRUE(reader.feed(std::string_view(&c, 1)).is_ok());
  expect_recorded(got.messages);
}

TEST(WatchStreamTest, MessagesSplitOverChunksAndSeveralInOneChunk) {
  const std::string body = kCreated + kPut + kDelete;
  // Chunks that cut messages anywhere (etcd's gateway flushes per message, but a large message
  // goes out in several chunks, and nothing promises one message per chunk).
  for (size_t size : {1u, 7u, 64u, 150u, 1000u}) {
    std::string bytes = kHeader;
    for (size_t at = 0; at < body.size(); at += size) bytes += chunk(body.substr(at, size));
    Collected got;
    WatchResponseReader reader(got.callback());
    ASSERT_TRUE(reader.feed(bytes).is_ok()) << size;
    expect_recorded(got.messages);
  }
}

TEST(WatchStreamTest, AMessageLargerThanTheBoundIsAnErrorNotABiggerBuffer) {
  constexpr size_t kBound = 1000;
  // A value whose message is larger than the bound, sent in small chunks, no newline yet.
  const std::string big =
      R"({"result":{"events":[{"kv":{"key":"eA==","mod_revision":"9","value":")" +
      std::string(4000, 'Q') + "\"}}]}}\n";
  Collected got;
  WatchStreamDecoder decoder(got.callback(), kBound);
  Status last = Status::ok();
  size_t fed = 0;
  for (; fed < big.size() && last.is_ok(); fed += 100) {
    last = decoder.feed(std::string_view(big).substr(fed, 100));
    EXPECT_LE(decoder.buffered_bytes(), kBound);
  }
  EXPECT_EQ(last.code(), StatusCode::kCorruption) << last.to_string();
  EXPECT_NE(last.message().find("larger than 1000 bytes"), std::string::npos) << last.message();
  EXPECT_LE(fed, kBound + 100);  // refused as soon as it exceeded the bound
  EXPECT_TRUE(got.messages.empty());

  // The same through the HTTP layer: the error ends the stream, and stays.
  WatchResponseReader reader(got.callback(), kBound);
  std::string bytes = kHeader + chunk(kCreated);
  for (size_t at = 0; at < big.size(); at += 256) bytes += chunk(big.substr(at, 256));
  Status status = reader.feed(bytes);
  EXPECT_EQ(status.code(), StatusCode::kCorruption) << status.to_string();
  EXPECT_EQ(reader.feed(chunk(kPut)).code(), StatusCode::kCorruption);
  EXPECT_EQ(got.messages.size(), 1u);  // "created" only

  // A message exactly at the bound passes.
  const std::string fits = kCreated.substr(0, kCreated.size() - 1);
  WatchStreamDecoder exact(got.callback(), fits.size());
  EXPECT_TRUE(exact.feed(kCreated).is_ok());
}

TEST(WatchStreamTest, BrokenStreamsAreErrors) {
  const std::string bytes = recorded();
  // Cut anywhere, then the connection ends: never a clean end, messages before the cut kept.
  for (size_t cut = 0; cut < bytes.size(); cut += 7) {
    Collected got;
    WatchResponseReader reader(got.callback());
    ASSERT_TRUE(reader.feed(std::string_view(bytes).substr(0, cut)).is_ok());
    Status end = reader.finish();
    EXPECT_EQ(end.code(), StatusCode::kUnavailable) << cut << " " << end.to_string();
    EXPECT_LE(got.messages.size(), 3u);
  }
  // Even a complete chunked body (the last chunk) ends the watch: an error for the watcher.
  Collected got;
  WatchResponseReader reader(got.callback());
  ASSERT_TRUE(reader.feed(bytes + "0\r\n\r\n").is_ok());
  EXPECT_TRUE(reader.done());
  Status end = reader.finish();
  EXPECT_EQ(end.code(), StatusCode::kUnavailable);
  EXPECT_NE(end.message().find("the stream ended"), std::string::npos) << end.message();
  expect_recorded(got.messages);
}

TEST(WatchStreamTest, MalformedChunkingAndMessagesAreErrors) {
  Collected got;
  {
    WatchResponseReader reader(got.callback());
    EXPECT_EQ(reader.feed(kHeader + "zz\r\nhello\r\n").code(), StatusCode::kCorruption);
  }
  {
    WatchResponseReader reader(got.callback());
    EXPECT_EQ(reader.feed(kHeader + chunk("{not json}\n")).code(), StatusCode::kCorruption);
  }
  {
    WatchResponseReader reader(got.callback());
    EXPECT_EQ(
        reader.feed("HTTP/1.1 200 OK\r\nX: " + std::string(net::kHttpStreamHeaderBytesMax, 'x'))
            .code(),
        StatusCode::kCorruption);
  }
  {
    // A stream that etcd ended with an error message.
    WatchResponseReader reader(got.callback());
    Status status = reader.feed(
        kHeader +
        chunk(
            R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})"
            "\n"));
    EXPECT_EQ(status.code(), StatusCode::kUnavailable);
    EXPECT_NE(status.message().find("no leader"), std::string::npos) << status.message();
  }
}

TEST(WatchStreamTest, ARefusedWatchCarriesEtcdsMessage) {
  Collected got;
  WatchResponseReader reader(got.callback());
  const std::string body =
      R"({"error":"illegal base64 data at input byte 0","message":"illegal base64 data at input byte 0","code":2})";
  Status status = reader.feed(
      "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("500 illegal base64"), std::string::npos) << status.message();
  // An error body larger than its bound is refused from its Content-Length.
  WatchResponseReader big(got.callback());
  EXPECT_EQ(big.feed("HTTP/1.1 500 Oops\r\nContent-Length: 100000000\r\n\r\n").code(),
            StatusCode::kCorruption);
  EXPECT_TRUE(got.messages.empty());
}

TEST(WatchMessageTest, CompactionAndCancel) {
  auto compacted = parse_watch_message(kCompacted.substr(0, kCompacted.size() - 1));
  ASSERT_TRUE(compacted.is_ok());
  EXPECT_TRUE(compacted->canceled);
  EXPECT_EQ(compacted->compact_revision, 5);
  EXPECT_FALSE(parse_watch_message(R"({"other":{}})").is_ok());
  EXPECT_FALSE(parse_watch_message(R"({"result":{"events":[{"kv":{"key":"!"}}]}})").is_ok());
}

TEST(WatchMessageTest, RequestBodyAndPrefixEnd) {
  EXPECT_EQ(etcd_prefix_end("/cairn/a/"), "/cairn/a0");
  EXPECT_EQ(etcd_prefix_end(std::string("a\xff", 2)), "b");
  auto body = nlohmann::json::parse(watch_request_body("/p/", "/p0", 42));
  EXPECT_EQ(body["create_request"]["key"], base64_encode("/p/"));
  EXPECT_EQ(body["create_request"]["range_end"], base64_encode("/p0"));
  EXPECT_EQ(body["create_request"]["start_revision"], "42");
  EXPECT_EQ(body["create_request"]["fragment"], true);
}

// ---- the watcher's loop against a scripted server -------------------------------------------

// Serves one scripted answer per connection, in order: range reads get the next of
// `range_answers` (the last one again once they run out), watch requests the next of
// `watch_answers` (each written whole, then the connection is closed; nothing once they run
// out). Records every watch request's body.
class ScriptedEtcd {
 public:
  ScriptedEtcd() : acceptor_(io_, net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedEtcd() {
    stopping_ = true;
    net::error_code ignored;
    // Wake accept() with one connection of our own.
    net::tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  std::mutex mu;
  std::vector<std::string> range_answers;
  std::vector<std::string> watch_answers;
  std::vector<std::string> watch_requests;
  int range_requests = 0;

 private:
  void serve() {
    while (!stopping_) {
      net::tcp::socket socket(io_);
      net::error_code error;
      acceptor_.accept(socket, error);
      if (error || stopping_) continue;
      std::string request;
      char buffer[4096];
      // Read the header and the body (Content-Length).
      size_t body_at = std::string::npos;
      size_t length = 0;
      while (!error) {
        size_t n = socket.read_some(net::asio::buffer(buffer), error);
        request.append(buffer, n);
        body_at = request.find("\r\n\r\n");
        if (body_at == std::string::npos) continue;
        auto cl = request.find("Content-Length: ");
        length = cl == std::string::npos ? 0 : std::stoul(request.substr(cl + 16));
        if (request.size() >= body_at + 4 + length) break;
      }
      if (error) continue;
      const std::string body = request.substr(body_at + 4, length);
      std::string answer;
      {
        std::lock_guard lock(mu);
        if (request.starts_with("POST /v3/kv/range")) {
          ++range_requests;
          if (!range_answers.empty()) answer = range_answers.front();
          if (range_answers.size() > 1) range_answers.erase(range_answers.begin());
        } else {
          watch_requests.push_back(body);
          if (!watch_answers.empty()) {
            answer = watch_answers.front();
            watch_answers.erase(watch_answers.begin());
          }
        }
      }
      net::asio::write(socket, net::asio::buffer(answer), error);
      socket.shutdown(net::tcp::socket::shutdown_both, error);
    }
  }

  net::asio::io_context io_;
  net::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

std::string range_answer(int64_t revision, const std::string& state_value) {
  nlohmann::json kvs = nlohmann::json::array();
  kvs.push_back({{"key", base64_encode("/p/state")},
                 {"value", base64_encode(state_value)},
                 {"create_revision", "2"},
                 {"mod_revision", std::to_string(revision)}});
  const std::string body =
      nlohmann::json{{"header", {{"revision", std::to_string(revision)}}}, {"kvs", kvs}}.dump();
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string put_message(int64_t revision, const std::string& value) {
  return R"({"result":{"header":{"revision":")" + std::to_string(revision) +
         R"("},"events":[{"kv":{"key":")" + base64_encode("/p/state") +
         R"(","create_revision":"2","mod_revision":")" + std::to_string(revision) +
         R"(","value":")" + base64_encode(value) + "\"}}]}}\n";
}

class Recorder final : public WatchHandler {
 public:
  void on_snapshot(const std::vector<EtcdKeyValue>& kvs, int64_t revision) override {
    std::lock_guard lock(mu);
    log.push_back("snapshot " + std::to_string(revision) + " " +
                  (kvs.empty() ? std::string("-") : kvs[0].value));
  }
  void on_event(const WatchEvent& event) override {
    std::lock_guard lock(mu);
    log.push_back("put " + std::to_string(event.kv.mod_revision) + " " + event.kv.value);
  }
  void on_up() override {
    std::lock_guard lock(mu);
    log.push_back("up");
  }
  void on_down(const Status& why) override {
    std::lock_guard lock(mu);
    log.push_back("down");
    downs.push_back(why.message());
  }
  std::vector<std::string> snapshot_log() {
    std::lock_guard lock(mu);
    return log;
  }
  std::mutex mu;
  std::vector<std::string> log;
  std::vector<std::string> downs;
};

TEST(EtcdWatcherTest, ReconnectsFromTheNextRevisionAndReloadsAfterACompaction) {
  ScriptedEtcd etcd;
  {
    std::lock_guard lock(etcd.mu);
    etcd.range_answers = {range_answer(10, "v10"), range_answer(20, "v20")};
    // 1: created, two puts, then the connection breaks in the middle of a chunk.
    etcd.watch_answers.push_back(kHeader + chunk(kCreated) + chunk(put_message(11, "v11")) +
                                 chunk(put_message(12, "v12")) + "40\r\n{\"resu");
    // 2: etcd compacted revision 13 away.
    etcd.watch_answers.push_back(kHeader + chunk(kCompacted));
    // 3 (after the new snapshot at 20): created, a put, then a clean end.
    etcd.watch_answers.push_back(kHeader + chunk(kCreated) + chunk(put_message(21, "v21")) +
                                 "0\r\n\r\n");
  }
  auto client = std::make_shared<EtcdClient>(
      std::vector<net::HttpEndpoint>{{"127.0.0.1", etcd.port()}}, 1000);
  Recorder recorder;
  WatchOptions options;
  options.key = "/p/";
  options.range_end = "/p0";
  options.backoff_min_ms = 20;
  options.backoff_max_ms = 40;
  EtcdWatcher watcher(client, options, &recorder);
  watcher.start();
  // After the compaction message the watcher reads the range again (revision 20).
  for (int i = 0; i < 300; ++i) {
    {
      std::lock_guard lock(etcd.mu);
      if (etcd.watch_requests.size() >= 4) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  watcher.stop();
  std::lock_guard lock(etcd.mu);
  ASSERT_GE(etcd.watch_requests.size(), 4u);
  auto start = [&](size_t i) {
    return nlohmann::json::parse(etcd.watch_requests[i])["create_request"]["start_revision"];
  };
  EXPECT_EQ(start(0), "11");  // the snapshot's revision + 1
  EXPECT_EQ(start(1), "13");  // after the last event seen (12), not the snapshot again
  EXPECT_EQ(start(2), "21");  // after the new snapshot
  EXPECT_EQ(start(3), "22");  // after the clean end, the next revision
  EXPECT_EQ(etcd.range_requests, 2);
  std::vector<std::string> log = recorder.snapshot_log();
  ASSERT_GE(log.size(), 9u);
  EXPECT_EQ(log[0], "snapshot 10 v10");
  EXPECT_EQ(log[1], "up");
  EXPECT_EQ(log[2], "put 11 v11");
  EXPECT_EQ(log[3], "put 12 v12");
  EXPECT_EQ(log[4], "down");  // the broken stream; the compaction is not a "down"
  EXPECT_EQ(log[5], "snapshot 20 v20");
  EXPECT_EQ(log[6], "up");
  EXPECT_EQ(log[7], "put 21 v21");
  EXPECT_EQ(log[8], "down");
}

TEST(EtcdWatcherTest, AnUnreachableEtcdIsRetriedWithBoundedBackoffAndStopsAtOnce) {
  // A port nobody listens on: every snapshot read fails.
  net::asio::io_context io;
  net::tcp::acceptor probe(io, net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = probe.local_endpoint().port();
  probe.close();
  auto client =
      std::make_shared<EtcdClient>(std::vector<net::HttpEndpoint>{{"127.0.0.1", port}}, 200);
  Recorder recorder;
  WatchOptions options;
  options.key = "/p/";
  options.range_end = "/p0";
  options.backoff_min_ms = 10;
  options.backoff_max_ms = 50;
  EtcdWatcher watcher(client, options, &recorder);
  watcher.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const auto stop_at = std::chrono::steady_clock::now();
  watcher.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, std::chrono::milliseconds(300));
  std::vector<std::string> log = recorder.snapshot_log();
  ASSERT_EQ(log.size(), 1u);  // one "down" for the whole outage, not one per retry
  EXPECT_EQ(log[0], "down");
}

TEST(HttpStreamCallTest, CancelEndsAStreamThatIsStillOpen) {
  // A server that answers the header and then says nothing.
  net::asio::io_context io;
  net::tcp::acceptor acceptor(io, net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0));
  std::thread server([&] {
    net::tcp::socket socket(io);
    acceptor.accept(socket);
    net::error_code error;
    net::asio::write(socket, net::asio::buffer(kHeader + chunk(kCreated)), error);
    char buffer[4096];
    while (!error) socket.read_some(net::asio::buffer(buffer), error);  // until the client closes
  });
  net::HttpStreamCall call;
  Collected got;
  WatchResponseReader reader(got.callback());
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    call.cancel();
  });
  net::HttpRequest request;
  request.method = "POST";
  request.target = "/v3/watch";
  const auto started = std::chrono::steady_clock::now();
  Status status =
      call.run({"127.0.0.1", acceptor.local_endpoint().port()}, request, reader, 1000, 30000);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_NE(status.message().find("cancelled"), std::string::npos) << status.to_string();
  EXPECT_EQ(got.messages.size(), 1u);
  canceller.join();
  server.join();
}

TEST(HttpStreamCallTest, AQuietStreamTimesOut) {
  net::asio::io_context io;
  net::tcp::acceptor acceptor(io, net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0));
  std::thread server([&] {
    net::tcp::socket socket(io);
    acceptor.accept(socket);
    net::error_code error;
    net::asio::write(socket, net::asio::buffer(kHeader + chunk(kCreated)), error);
    char buffer[4096];
    while (!error) socket.read_some(net::asio::buffer(buffer), error);
  });
  net::HttpStreamCall call;
  Collected got;
  WatchResponseReader reader(got.callback());
  net::HttpRequest request;
  request.method = "POST";
  request.target = "/v3/watch";
  Status status =
      call.run({"127.0.0.1", acceptor.local_endpoint().port()}, request, reader, 1000, 200);
  EXPECT_EQ(status.code(), StatusCode::kTimedOut) << status.to_string();
  EXPECT_EQ(got.messages.size(), 1u);
  server.join();
}

}  // namespace
}  // namespace cairn::orchestrator
