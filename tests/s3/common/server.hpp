// Servers for the S3 tests:
// - test_server_config() (from support/s3_server.hpp): the S3 store the
//   server tests run against, with a fresh key prefix per call.
// - scripted_http_server: a tiny HTTP/1.1 server on 127.0.0.1, on the test's
//   io_context, that answers each request as the test's script says (a
//   status, headers and body; closing the connection; or never answering).
#pragma once

#include "support/s3_server.hpp"

#include <storewatch/detail/config.hpp>
#include <storewatch/s3/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch::s3::test {

// The S3 store the server tests run against (tests/support/s3_server.hpp,
// shared with the benchmarks).
using storewatch::test_support::random_prefix;
using storewatch::test_support::test_server_config;
using storewatch::test_support::using_s3rver;

/// A request the scripted server received.
struct recorded_request {
  std::string method{};
  std::string target{};  ///< as on the request line: "/bucket/key?x=1"
  std::vector<std::pair<std::string, std::string>> headers{};  ///< names lower-cased
  std::string body{};
  std::chrono::steady_clock::time_point arrived{};

  /// The value of header `lower_name`, or nullptr.
  const std::string* header(std::string_view lower_name) const {
    for (const auto& h : headers) {
      if (h.first == lower_name) return &h.second;
    }
    return nullptr;
  }
};

/// What the scripted server does with one request.
struct scripted_reply {
  enum class kind { respond, close, stall };
  kind action = kind::respond;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};

  /// Answer with `status`, `body` and `headers` (Content-Length is added).
  static scripted_reply respond(int status, std::string body = {},
                                std::vector<std::pair<std::string, std::string>> headers = {}) {
    scripted_reply r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return r;
  }
  /// Close the connection without answering.
  static scripted_reply close_connection() {
    scripted_reply r;
    r.action = kind::close;
    return r;
  }
  /// Never answer (the connection stays open until the client closes it).
  static scripted_reply stall() {
    scripted_reply r;
    r.action = kind::stall;
    return r;
  }
};

/// An HTTP/1.1 server on 127.0.0.1 (a free port) that runs on `io` and
/// answers requests as `script(request, index)` says, where index counts
/// requests from 0. Keeps connections alive between requests.
class scripted_http_server {
 public:
  using script_type = std::function<scripted_reply(const recorded_request&, std::size_t index)>;

  scripted_http_server(asio::io_context& io, script_type script)
      : state_(std::make_shared<state>(io, std::move(script))) {
    asio::co_spawn(io, accept_loop(state_), asio::detached);
  }
  ~scripted_http_server() { stop(); }
  scripted_http_server(const scripted_http_server&) = delete;
  scripted_http_server& operator=(const scripted_http_server&) = delete;

  /// The port it listens on.
  std::uint16_t port() const { return state_->port; }
  /// "http://127.0.0.1:PORT" + `path`.
  std::string url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port()) + std::string(path);
  }
  /// The requests received so far, in order.
  const std::vector<recorded_request>& requests() const { return state_->requests; }
  /// Connections open now, and the most open at once.
  std::size_t open_connections() const { return state_->open; }
  std::size_t max_open_connections() const { return state_->max_open; }

  /// Closes the listening socket and every connection.
  void stop() {
    if (state_->stopped) return;
    state_->stopped = true;
    std::error_code ignored;
    state_->acceptor.close(ignored);
    for (auto& weak : state_->sockets) {
      if (auto socket = weak.lock()) socket->close(ignored);
    }
  }

 private:
  using tcp = asio::ip::tcp;

  struct state {
    state(asio::io_context& io, script_type s) : acceptor(io), script(std::move(s)) {
      const tcp::endpoint where(asio::ip::make_address("127.0.0.1"), 0);
      acceptor.open(where.protocol());
      acceptor.set_option(tcp::acceptor::reuse_address(true));
      acceptor.bind(where);
      acceptor.listen();
      port = acceptor.local_endpoint().port();
    }
    tcp::acceptor acceptor;
    script_type script;
    std::uint16_t port = 0;
    std::vector<recorded_request> requests{};
    std::vector<std::weak_ptr<tcp::socket>> sockets{};
    std::size_t open = 0;
    std::size_t max_open = 0;
    bool stopped = false;
  };

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> s) {
    using asio::experimental::as_tuple;
    while (!s->stopped) {
      auto socket = std::make_shared<tcp::socket>(s->acceptor.get_executor());
      auto [ec] = co_await s->acceptor.async_accept(*socket, as_tuple(asio::use_awaitable));
      if (ec || s->stopped) break;
      s->sockets.push_back(socket);
      asio::co_spawn(s->acceptor.get_executor(), serve(s, std::move(socket)), asio::detached);
    }
  }

  static std::string reason(int status) {
    switch (status) {
      case 200: return "OK";
      case 204: return "No Content";
      case 400: return "Bad Request";
      case 403: return "Forbidden";
      case 404: return "Not Found";
      case 412: return "Precondition Failed";
      case 429: return "Too Many Requests";
      case 500: return "Internal Server Error";
      case 503: return "Service Unavailable";
      default: return "Status";
    }
  }

  static std::string lower(std::string text) {
    for (char& c : text) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return text;
  }

// g++ 12 with -O1 and ASan warns that the coroutine frame of `serve`, made by
// Asio's awaitable_frame_base::operator new, is freed by a mismatched operator
// delete: a false positive (GCC bug 109224); the pair is Asio's own.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
  static asio::awaitable<void> serve(std::shared_ptr<state> s, std::shared_ptr<tcp::socket> socket) {
    using asio::experimental::as_tuple;
    ++s->open;
    s->max_open = std::max(s->max_open, s->open);
    std::string buffer;
    while (!s->stopped) {
      auto [read_error, head_size] =
          co_await asio::async_read_until(*socket, asio::dynamic_buffer(buffer), "\r\n\r\n", as_tuple(asio::use_awaitable));
      if (read_error || s->stopped) break;
      recorded_request request;
      std::istringstream head(buffer.substr(0, head_size));
      buffer.erase(0, head_size);
      std::string line;
      std::getline(head, line);
      std::istringstream request_line(line);
      request_line >> request.method >> request.target;
      std::size_t content_length = 0;
      while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) break;
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        request.headers.emplace_back(lower(line.substr(0, colon)), value);
        if (request.headers.back().first == "content-length") content_length = std::stoul(value);
      }
      if (buffer.size() < content_length) {
        auto [body_error, ignored] =
            co_await asio::async_read(*socket, asio::dynamic_buffer(buffer),
                                      asio::transfer_at_least(content_length - buffer.size()),
                                      as_tuple(asio::use_awaitable));
        if (body_error || s->stopped) break;
      }
      request.body = buffer.substr(0, content_length);
      buffer.erase(0, content_length);
      request.arrived = std::chrono::steady_clock::now();
      const auto index = s->requests.size();
      s->requests.push_back(request);
      const auto reply = s->script(request, index);
      if (reply.action == scripted_reply::kind::close) break;
      if (reply.action == scripted_reply::kind::stall) continue;  // the next read waits for the client to go
      std::string text = "HTTP/1.1 " + std::to_string(reply.status) + ' ' + reason(reply.status) + "\r\n";
      bool has_length = false;
      for (const auto& [name, value] : reply.headers) {
        has_length = has_length || lower(name) == "content-length";
        text += name + ": " + value + "\r\n";
      }
      if (!has_length) text += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
      text += "\r\n";
      if (request.method != "HEAD") text += reply.body;
      auto [write_error, written] = co_await asio::async_write(*socket, asio::buffer(text), as_tuple(asio::use_awaitable));
      if (write_error) break;
    }
    std::error_code ignored;
    socket->shutdown(tcp::socket::shutdown_both, ignored);
    socket->close(ignored);
    --s->open;
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  std::shared_ptr<state> state_;
};

/// A port on 127.0.0.1 where nothing listens (bound once, then freed).
inline std::uint16_t unused_port(asio::io_context& io) {
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  acceptor.close();
  return port;
}

}  // namespace storewatch::s3::test
