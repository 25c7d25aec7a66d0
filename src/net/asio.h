#pragma once
// The one place Boost.Asio is included (docs/architecture.md: src/net owns the network). With g++ 12 and
// C++20 coroutines, Boost 1.74's Asio needs <utility> before it, so every user includes this
// header instead of <boost/asio.hpp>.

#include <utility>

#include <boost/asio.hpp>

namespace cairn::net {
namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;
}  // namespace cairn::net
