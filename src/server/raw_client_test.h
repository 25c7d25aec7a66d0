#pragma once
// Test helper shared by the loopback tests: a blocking RESP client over a raw socket.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>
#include <string_view>

namespace cairn::server::test_support {

// A blocking client socket with a receive timeout, so a broken server fails a test, not hangs it.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  void send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Reads exactly `bytes` bytes (fewer if the server closes or the timeout hits).
  std::string read(size_t bytes) {
    std::string out;
    char buffer[65536];
    while (out.size() < bytes) {
      const ssize_t n = ::recv(fd_, buffer, std::min(sizeof(buffer), bytes - out.size()), 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }
  // Reads until `suffix` ends what was read.
  std::string read_until(std::string_view suffix) {
    std::string out;
    char c;
    while (!out.ends_with(suffix)) {
      if (::recv(fd_, &c, 1, 0) != 1) break;
      out.push_back(c);
    }
    return out;
  }
  // Reads everything until the server closes the connection.
  std::string read_until_closed() {
    std::string out;
    char buffer[4096];
    while (true) {
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }
  // Sends one command and reads one reply line (simple replies, errors, integers).
  std::string line(std::string_view command) {
    send(command);
    return read_until("\r\n");
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

inline std::string command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n";
    out += arg;
    out += "\r\n";
  }
  return out;
}

inline std::string command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n";
    out += arg;
    out += "\r\n";
  }
  return out;
}

inline std::string bulk(std::string_view value) {
  return "$" + std::to_string(value.size()) + "\r\n" + std::string(value) + "\r\n";
}

}  // namespace cairn::server::test_support
