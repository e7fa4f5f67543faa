// A TCP proxy for outage tests: clients connect to 127.0.0.1:port() (or
// another address of this machine), which forwards to the S3 server. `down()` refuses new connections and cuts the
// open ones, as a server that went away; `up()` listens on the same port again.
#pragma once

#include <asio.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <vector>

namespace storewatch::s3::test {

class tcp_proxy {
 public:
  tcp_proxy(asio::io_context& io, asio::ip::tcp::endpoint upstream,
            asio::ip::address listen = asio::ip::address_v4::loopback())
      : io_(io), upstream_(upstream), listen_(listen), acceptor_(io, asio::ip::tcp::endpoint(listen, 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept();
  }
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;
  ~tcp_proxy() { down(); }

  unsigned short port() const { return port_; }
  /// Connections accepted so far.
  std::size_t accepted() const { return accepted_; }
  bool is_up() const { return acceptor_.is_open(); }

  /// Refuses new connections (the port is closed) and cuts the open ones.
  void down() {
    std::error_code ignored;
    acceptor_.close(ignored);
    for (auto& weak : sockets_) {
      if (auto socket = weak.lock()) socket->close(ignored);
    }
    sockets_.clear();
  }

  /// Listens on the same port again.
  void up() {
    if (acceptor_.is_open()) return;
    const asio::ip::tcp::endpoint here(listen_, port_);
    acceptor_.open(here.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(here);
    acceptor_.listen();
    accept();
  }

 private:
  using socket_ptr = std::shared_ptr<asio::ip::tcp::socket>;

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket client) {
      if (ec) return;  // closed by down()
      ++accepted_;
      auto downstream = std::make_shared<asio::ip::tcp::socket>(std::move(client));
      auto upstream = std::make_shared<asio::ip::tcp::socket>(io_);
      sockets_.push_back(downstream);
      sockets_.push_back(upstream);
      upstream->async_connect(upstream_, [downstream, upstream](std::error_code connect_error) {
        if (connect_error) {
          std::error_code ignored;
          downstream->close(ignored);
          return;
        }
        pipe(downstream, upstream);
        pipe(upstream, downstream);
      });
      accept();
    });
  }

  // Copies `from` to `to` until either side closes, then closes both.
  static void pipe(socket_ptr from, socket_ptr to) {
    auto buffer = std::make_shared<std::array<char, 16384>>();
    from->async_read_some(asio::buffer(*buffer), [from, to, buffer](std::error_code ec, std::size_t n) {
      if (ec) {
        std::error_code ignored;
        to->shutdown(asio::socket_base::shutdown_send, ignored);
        return;
      }
      asio::async_write(*to, asio::buffer(buffer->data(), n), [from, to](std::error_code write_error, std::size_t) {
        if (write_error) {
          std::error_code ignored;
          from->close(ignored);
          return;
        }
        pipe(from, to);
      });
    });
  }

  asio::io_context& io_;
  asio::ip::tcp::endpoint upstream_;
  asio::ip::address listen_;
  asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::size_t accepted_ = 0;
  std::vector<std::weak_ptr<asio::ip::tcp::socket>> sockets_;
};

}  // namespace storewatch::s3::test
