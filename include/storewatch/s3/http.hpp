/// \file
/// HTTP requests over libcurl's multi-socket interface, driven by Asio on the
/// caller's io_context: the transport of the S3 client.
//
// How it works. One CURLM per client. curl says which sockets it wants to
// read or write (CURLMOPT_SOCKETFUNCTION); each is watched with a
// posix::stream_descriptor and async_wait, and released (never closed: the
// socket is curl's) when curl is done with it. curl's one timeout is an
// asio::steady_timer (CURLMOPT_TIMERFUNCTION). Readiness and timeouts go to
// curl_multi_socket_action, and curl_multi_info_read reports finished
// transfers. curl opens and closes the sockets through our callbacks
// (CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION), so a watcher is always
// released before its descriptor number can be reused by a new socket.
//
// Threads. The client starts no thread and every callback runs inside the
// io_context. But Debian's libcurl (7.88, "AsynchDNS" without c-ares) resolves
// a host name on a helper thread it starts for each lookup (its threaded
// resolver). An endpoint given as an IP address, or a host name listed in
// `http_options::resolve`, never needs that thread. Removing a transfer while
// its host name is being looked up (cancellation, destruction) makes curl
// join that thread, so it can block until getaddrinfo returns.
//
// Streamed bodies. A request body from a file (`http_request::upload`) and a
// response body to a file (`download_fd`) are read and written a block at a
// time (curl's buffers: 64 KiB up, 16 KiB down) by curl's callbacks, in the
// io_context: file I/O that blocks it briefly, as page-cache I/O does.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/s3/sigv4.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cerrno>

#include <sys/socket.h>
#include <unistd.h>

namespace storewatch::s3 {

/// Settings of a `basic_http_client`.
struct http_options {
  /// Longest time to set up a connection (TCP, and TLS for https); 0: curl's default (300 s).
  std::chrono::milliseconds connect_timeout{5'000};
  /// Longest time for a whole request, connection included, unless the
  /// request sets its own `http_request::timeout`; 0: none. Not for a
  /// streamed request (see `low_speed_limit`).
  std::chrono::milliseconds request_timeout{10'000};
  /// Fixed addresses for host names, as curl's CURLOPT_RESOLVE takes them:
  /// "host:port:address" ("s3.example.com:443:10.0.0.7"). A listed host is
  /// never looked up, so no resolver thread is started for it.
  std::vector<std::string> resolve{};
  /// Most connections open at once (CURLMOPT_MAX_TOTAL_CONNECTIONS); more
  /// requests wait for a free one. 0: no limit.
  long max_connections = 0;
  /// A file of PEM CA certificates to verify https servers with
  /// (CURLOPT_CAINFO) instead of the system's; empty: the system's.
  std::string ca_file{};
  /// A streamed transfer (`http_request::upload` or `download`) has no total
  /// time limit, which would fail every large enough file on a slow enough
  /// link: it is aborted (CURLE_OPERATION_TIMEDOUT) when it moves fewer than
  /// `low_speed_limit` bytes a second for `low_speed_time`. 0: no such limit.
  long low_speed_limit = 1024;
  /// See `low_speed_limit`.
  std::chrono::seconds low_speed_time{30};
};

/// Where a streamed request body comes from: `length` bytes of the open
/// file `fd` from `offset` on, read (pread) a block at a time while they are
/// sent, so memory stays bounded whatever the size. The descriptor stays the
/// caller's and must stay open until the request completes.
struct http_body_source {
  int fd = -1;                ///< an open file (not closed by the client)
  std::uint64_t offset = 0;   ///< where the body starts in it
  std::uint64_t length = 0;   ///< the body's size: the Content-Length sent
};

/// An HTTP request.
struct http_request {
  /// The method: "GET", "PUT", "HEAD", "DELETE", "POST", ...
  std::string method = "GET";
  /// The URL, encoded exactly as it is to be sent: it goes on the wire as
  /// given, nothing normalized ("a/./b" stays).
  std::string url{};
  /// Headers to send (a Host header here replaces curl's).
  std::vector<header> headers{};
  /// The body, sent from memory with a Content-Length for PUT and POST (and
  /// any method with a non-empty body). curl adds no Content-Type of its own
  /// and never `Expect: 100-continue`.
  std::string body{};
  /// Longest time for this request; 0: `http_options::request_timeout`
  /// (for a streamed request, 0: none, only the low-speed limit).
  std::chrono::milliseconds timeout{0};
  /// For PUT: the body is streamed from here instead of `body` (which is
  /// then ignored).
  std::optional<http_body_source> upload{};
  /// When not negative, the body of a 2xx response is written (pwrite) to
  /// this open file from offset 0 on instead of into `http_response::body`,
  /// and `http_response::body_size` says how much; the body of any other
  /// response (an error document) still goes to `body`. The descriptor
  /// stays the caller's. Bytes past `body_size` are left as they were.
  int download_fd = -1;
};

/// An HTTP response.
struct http_response {
  /// The status of the final response (200, 404, ...); 0 when none arrived.
  long status = 0;
  /// The response headers in the order received, names lower-cased, values
  /// without surrounding blanks. Headers of interim (1xx) responses are dropped.
  std::vector<s3::header> headers{};
  /// The body (empty for HEAD, and for a 2xx response to a request with a
  /// `download_fd`).
  std::string body{};
  /// The bytes of body received (also those written to a `download_fd`).
  std::uint64_t body_size = 0;
  /// When the transfer failed: what curl said about it, in detail
  /// (CURLOPT_ERRORBUFFER: "Failed to connect to 127.0.0.1 port 9 after 0 ms:
  /// Connection refused"), else empty.
  std::string error_text{};

  /// The value of the first header named `lower_name` (lower case), or nullptr.
  const std::string* header(std::string_view lower_name) const {
    for (const auto& h : headers) {
      if (h.first == lower_name) return &h.second;
    }
    return nullptr;
  }
};

namespace detail {

class http_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "storewatch.s3.http"; }
  std::string message(int value) const override { return curl_easy_strerror(static_cast<CURLcode>(value)); }
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<CURLcode>(value)) {
      case CURLE_OPERATION_TIMEDOUT:
        return std::errc::timed_out;
      case CURLE_OUT_OF_MEMORY:
        return std::errc::not_enough_memory;
      default:
        return {value, *this};
    }
  }
};

}  // namespace detail

/// The category of transport errors: the value is a libcurl `CURLcode`
/// (CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, ...), the message
/// curl_easy_strerror's. CURLE_OPERATION_TIMEDOUT compares equal to
/// `std::errc::timed_out`.
inline const std::error_category& http_category() noexcept {
  static const detail::http_category_impl instance;
  return instance;
}

/// `code` as a `std::error_code` in `http_category()`.
inline std::error_code make_http_error(CURLcode code) noexcept { return {static_cast<int>(code), http_category()}; }

namespace detail {

/// Initialises libcurl once per process (curl_global_init is not to be
/// called concurrently with other libcurl calls before it has returned; a
/// function-local static makes the first use do it). Throws std::runtime_error.
inline void curl_global() {
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK) {
    throw std::runtime_error(std::string("libcurl could not be initialised: ") + curl_easy_strerror(result));
  }
}

inline std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// Adds one header line as curl hands it over ("Name: value\r\n") to
/// `headers`: names lower-cased, values trimmed, folded lines joined. A
/// status line starts a new response (after a 1xx one), so it clears them.
inline void add_header_line(std::vector<header>& headers, std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    headers.clear();
    return;
  }
  if (line.empty()) return;
  if (line.front() == ' ' || line.front() == '\t') {
    if (!headers.empty()) {
      auto& value = headers.back().second;
      if (!value.empty()) value += ' ';
      value += trim_blanks(line);
    }
    return;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return;
  headers.emplace_back(s3::detail::to_lower_ascii(trim_blanks(line.substr(0, colon))),
                       std::string(trim_blanks(line.substr(colon + 1))));
}

/// True for an HTTP token (a method or header name).
inline bool is_http_token(std::string_view text) {
  if (text.empty()) return false;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

/// What is wrong with `r` that would let it inject text into the request
/// head, or "" when nothing is.
inline std::string request_problem(const http_request& r) {
  if (!is_http_token(r.method)) return "the method is not an HTTP token";
  for (const char c : r.url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) return "the URL has a blank or control character";
  }
  for (const auto& [name, value] : r.headers) {
    if (!is_http_token(name)) return "a header name is not an HTTP token";
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return "the value of header " + name + " has CR, LF or NUL";
    }
  }
  return {};
}

/// A transfer in progress: the easy handle, what it sends and what it has
/// received so far. The handler lives in the derived `http_transfer`.
struct http_transfer_base {
  http_transfer_base() = default;
  http_transfer_base(const http_transfer_base&) = delete;
  http_transfer_base& operator=(const http_transfer_base&) = delete;
  virtual ~http_transfer_base() = default;

  /// Posts the handler with `ec` and `response`; once.
  virtual void complete(std::error_code ec) = 0;

  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  http_request request{};
  http_response response{};
  char error_buffer[CURL_ERROR_SIZE] = {};
  std::uint64_t uploaded = 0;  // bytes of `request.upload` handed to curl so far
};

template <class Handler, class IoExecutor>
struct http_transfer final : http_transfer_base {
  http_transfer(Handler h, const IoExecutor& ex)
      : handler(std::move(h)),
        io_executor(ex),
        io_work(ex),
        handler_work(asio::get_associated_executor(handler, ex)) {}

  void complete(std::error_code ec) override {
    if (completed) return;
    completed = true;
    auto handler_executor = asio::get_associated_executor(handler, io_executor);
    io_work.reset();
    // Posted: never inside the initiating call, and never inside the
    // cancellation handler (which clearing the slot would destroy).
    asio::post(io_executor,
               asio::bind_executor(std::move(handler_executor),
                                   [h = std::move(handler), work = std::move(handler_work), ec,
                                    r = std::move(response)]() mutable {
                                     auto slot = asio::get_associated_cancellation_slot(h);
                                     if (slot.is_connected()) slot.clear();
                                     std::move(h)(ec, std::move(r));
                                   }));
  }

  Handler handler;
  IoExecutor io_executor;
  asio::executor_work_guard<IoExecutor> io_work;
  asio::executor_work_guard<asio::associated_executor_t<Handler, IoExecutor>> handler_work;
  bool completed = false;
};

}  // namespace detail

namespace detail {

/// The state of a `basic_http_client`, shared with its pending waits (which
/// hold it weakly, so that none outlives it).
template <class Executor>
class http_client_impl : public std::enable_shared_from_this<http_client_impl<Executor>> {
 public:
  http_client_impl(const Executor& executor, http_options options)
      : executor_(executor), options_(std::move(options)), timer_(executor) {
    curl_global();
    curl_slist* resolve = nullptr;
    for (const auto& entry : options_.resolve) {
      auto* list = curl_slist_append(resolve, entry.c_str());
      if (list == nullptr) {
        curl_slist_free_all(resolve);
        throw std::bad_alloc();
      }
      resolve = list;
    }
    resolve_list_.reset(resolve);
    multi_.reset(curl_multi_init());
    if (!multi_) throw std::runtime_error("libcurl: curl_multi_init failed");
    CURLMcode rc = curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &http_client_impl::on_socket);
    if (rc == CURLM_OK) rc = curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, static_cast<void*>(this));
    if (rc == CURLM_OK) rc = curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &http_client_impl::on_timer);
    if (rc == CURLM_OK) rc = curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, static_cast<void*>(this));
    if (rc == CURLM_OK && options_.max_connections > 0) {
      rc = curl_multi_setopt(multi_.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, options_.max_connections);
    }
    if (rc != CURLM_OK) throw std::runtime_error(std::string("libcurl: ") + curl_multi_strerror(rc));
  }

  ~http_client_impl() { shutdown(); }

  http_client_impl(const http_client_impl&) = delete;
  http_client_impl& operator=(const http_client_impl&) = delete;

  const Executor& executor() const noexcept { return executor_; }
  const http_options& options() const noexcept { return options_; }
  std::size_t in_flight() const noexcept { return transfers_.size(); }

  template <class Handler>
  void start(Handler handler, http_request request) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto transfer = std::make_shared<http_transfer<Handler, Executor>>(std::move(handler), executor_);
    transfer->request = std::move(request);
    if (shut_down_) {
      transfer->complete(asio::error::operation_aborted);
      return;
    }
    if (const CURLcode failure = configure(*transfer); failure != CURLE_OK) {
      fail_before_start(*transfer, failure);
      return;
    }
    transfers_.emplace(transfer->easy, transfer);
    if (const CURLMcode added = curl_multi_add_handle(multi_.get(), transfer->easy); added != CURLM_OK) {
      transfers_.erase(transfer->easy);
      transfer->response.error_text = std::string("libcurl: ") + curl_multi_strerror(added);
      fail_before_start(*transfer, CURLE_FAILED_INIT);
      return;
    }
    if (slot.is_connected()) {
      slot.assign([self = this->weak_from_this(),
                   weak = std::weak_ptr<http_transfer_base>(transfer)](asio::cancellation_type type) {
        if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial)) ==
            asio::cancellation_type::none) {
          return;
        }
        auto owner = self.lock();
        auto target = weak.lock();
        if (owner && target) owner->cancel(*target);
      });
    }
    // curl_multi_add_handle set a 0 ms timeout: the transfer begins when that
    // timer fires, in the io_context.
  }

  /// Aborts every transfer, frees curl's handles and releases every socket.
  void shutdown() {
    if (shut_down_) return;
    shut_down_ = true;
    auto transfers = std::move(transfers_);
    transfers_.clear();
    for (auto& [easy, transfer] : transfers) {
      detach(*transfer);
      transfer->complete(asio::error::operation_aborted);
    }
    // Closes the cached connections, through on_close_socket.
    multi_.reset();
    for (auto& [fd, watch] : sockets_) release(*watch);
    sockets_.clear();
    timer_.cancel();
  }

 private:
  using timer_type =
      asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;
  using descriptor_type = asio::posix::basic_stream_descriptor<Executor>;

  /// A socket curl asked to be watched.
  struct socket_watch {
    socket_watch(const Executor& executor, curl_socket_t fd) : descriptor(executor, fd), socket(fd) {}
    descriptor_type descriptor;
    curl_socket_t socket;
    int wanted = 0;        // CURL_POLL_IN / _OUT / _INOUT
    bool active = true;    // false once released: a late completion is stale
    bool reading = false;  // a wait_read is pending
    bool writing = false;  // a wait_write is pending
  };

  struct multi_deleter {
    void operator()(CURLM* multi) const noexcept { curl_multi_cleanup(multi); }
  };
  struct slist_deleter {
    void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
  };

  /// Fills in `error_text` of a failed transfer, unless it says something
  /// already: curl's error buffer, and the system's word for the errno of
  /// the last socket call when curl recorded one ("Connection refused").
  static void set_error_text(http_transfer_base& transfer, CURLcode code) {
    if (!transfer.response.error_text.empty()) return;
    auto& text = transfer.response.error_text;
    text = transfer.error_buffer[0] != '\0' ? std::string(transfer.error_buffer) : std::string(curl_easy_strerror(code));
    long os_errno = 0;
    if (transfer.easy != nullptr && curl_easy_getinfo(transfer.easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
        os_errno != 0) {
      const auto system_text = std::system_category().message(static_cast<int>(os_errno));
      if (text.find(system_text) == std::string::npos) text += " (" + system_text + ')';
    }
  }

  void fail_before_start(http_transfer_base& transfer, CURLcode code) {
    set_error_text(transfer, code);
    detach(transfer);
    transfer.complete(make_http_error(code));
  }

  /// Makes and sets up the easy handle of `t`.
  CURLcode configure(http_transfer_base& t) {
    if (auto problem = request_problem(t.request); !problem.empty()) {
      t.response.error_text = "bad request: " + problem;
      return CURLE_BAD_FUNCTION_ARGUMENT;
    }
    t.easy = curl_easy_init();
    if (t.easy == nullptr) return CURLE_FAILED_INIT;
    CURLcode rc = CURLE_OK;
    const auto set = [&](CURLoption option, auto value) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(t.easy, option, value);
    };
    const auto milliseconds = [](std::chrono::milliseconds value) {
      return static_cast<long>(value.count() < 0 ? 0 : value.count());
    };
    set(CURLOPT_URL, t.request.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
    set(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    // libcurl 7.80 to 7.84 (Ubuntu 22.04 has 7.81): the bitmask form, which
    // 7.85 deprecated for the string above.
    set(CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    set(CURLOPT_NOSIGNAL, 1L);
    // The URL is encoded exactly as it was signed: no "/./" or "/../" folding.
    set(CURLOPT_PATH_AS_IS, 1L);
    set(CURLOPT_CONNECTTIMEOUT_MS, milliseconds(options_.connect_timeout));
    if (t.request.upload || t.request.download_fd >= 0) {
      set_streaming(t, set);
    } else {
      set(CURLOPT_TIMEOUT_MS,
          milliseconds(t.request.timeout.count() > 0 ? t.request.timeout : options_.request_timeout));
    }
    set(CURLOPT_ERRORBUFFER, t.error_buffer);
    set(CURLOPT_HEADERFUNCTION, &http_client_impl::on_header);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    set(CURLOPT_WRITEFUNCTION, &http_client_impl::on_body);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&t));
    set(CURLOPT_OPENSOCKETFUNCTION, &http_client_impl::on_open_socket);
    set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(this));
    set(CURLOPT_CLOSESOCKETFUNCTION, &http_client_impl::on_close_socket);
    set(CURLOPT_CLOSESOCKETDATA, static_cast<void*>(this));
    if (resolve_list_) set(CURLOPT_RESOLVE, resolve_list_.get());
    if (!options_.ca_file.empty()) set(CURLOPT_CAINFO, options_.ca_file.c_str());

    const auto& method = t.request.method;
    const bool has_body = !t.request.body.empty() || method == "PUT" || method == "POST";
    bool has_content_type = false;
    bool has_expect = false;
    for (const auto& [name, value] : t.request.headers) {
      const auto lower = s3::detail::to_lower_ascii(name);
      has_content_type = has_content_type || lower == "content-type";
      has_expect = has_expect || lower == "expect";
      // "Name;" is how curl is told to send a header with an empty value.
      if (!append_header(t, value.empty() ? name + ';' : name + ": " + value)) return CURLE_OUT_OF_MEMORY;
    }
    // "Name:" with nothing after it removes a header curl would add itself.
    if (!has_expect && !append_header(t, "Expect:")) return CURLE_OUT_OF_MEMORY;
    if (has_body && !has_content_type && !append_header(t, "Content-Type:")) return CURLE_OUT_OF_MEMORY;
    set(CURLOPT_HTTPHEADER, t.header_list);

    if (method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else if (t.request.upload && method == "PUT") {
      set(CURLOPT_UPLOAD, 1L);
      set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t.request.upload->length));
    } else if (has_body) {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.request.body.size()));
      set(CURLOPT_POSTFIELDS, t.request.body.data());  // not copied: the transfer keeps the body
      if (method != "POST") set(CURLOPT_CUSTOMREQUEST, method.c_str());
    } else if (method == "GET") {
      set(CURLOPT_HTTPGET, 1L);
    } else {
      set(CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    return rc;
  }

  /// The settings of a streamed transfer: a low-speed limit instead of a
  /// total time (unless the request sets its own), and the callbacks that
  /// read the body from its file.
  template <class Set>
  void set_streaming(http_transfer_base& t, const Set& set) {
    if (t.request.timeout.count() > 0) set(CURLOPT_TIMEOUT_MS, static_cast<long>(t.request.timeout.count()));
    if (options_.low_speed_limit > 0 && options_.low_speed_time.count() > 0) {
      set(CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_limit);
      set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
    }
    if (t.request.upload) {
      set(CURLOPT_READFUNCTION, &http_client_impl::on_read);
      set(CURLOPT_READDATA, static_cast<void*>(&t));
      set(CURLOPT_SEEKFUNCTION, &http_client_impl::on_seek);
      set(CURLOPT_SEEKDATA, static_cast<void*>(&t));
    }
  }

  static bool append_header(http_transfer_base& t, const std::string& line) {
    auto* list = curl_slist_append(t.header_list, line.c_str());
    if (list == nullptr) return false;
    t.header_list = list;
    return true;
  }

  /// Takes the easy handle of `t` out of the multi handle and frees it.
  void detach(http_transfer_base& t) noexcept {
    if (t.easy != nullptr) {
      if (multi_) curl_multi_remove_handle(multi_.get(), t.easy);
      curl_easy_cleanup(t.easy);
      t.easy = nullptr;
    }
    curl_slist_free_all(t.header_list);
    t.header_list = nullptr;
  }

  void cancel(http_transfer_base& t) {
    const auto it = transfers_.find(t.easy);
    if (t.easy == nullptr || it == transfers_.end()) return;
    const auto keep = it->second;
    transfers_.erase(it);
    detach(t);
    t.complete(asio::error::operation_aborted);
  }

  /// Hands readiness (or the timeout) to curl, then completes what finished.
  void act(curl_socket_t socket, int flags) {
    int running = 0;
    curl_multi_socket_action(multi_.get(), socket, flags, &running);
    while (true) {
      int left = 0;
      CURLMsg* message = curl_multi_info_read(multi_.get(), &left);
      if (message == nullptr) break;
      if (message->msg != CURLMSG_DONE) continue;
      CURL* const easy = message->easy_handle;
      const CURLcode result = message->data.result;
      const auto it = transfers_.find(easy);
      if (it == transfers_.end()) continue;
      const auto transfer = it->second;
      transfers_.erase(it);
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &transfer->response.status);
      std::error_code ec;
      if (result != CURLE_OK) {
        ec = make_http_error(result);
        set_error_text(*transfer, result);
      }
      detach(*transfer);
      transfer->complete(ec);
    }
  }

  void watch_socket(curl_socket_t socket, int what) {
    if (what == CURL_POLL_REMOVE) {
      forget_socket(socket);
      return;
    }
    if (shut_down_) return;
    auto& watch = sockets_[socket];
    if (!watch) watch = std::make_shared<socket_watch>(executor_, socket);
    watch->wanted = what;
    arm(watch);
  }

  void arm(const std::shared_ptr<socket_watch>& watch) {
    if ((watch->wanted & CURL_POLL_IN) != 0 && !watch->reading) {
      watch->reading = true;
      watch->descriptor.async_wait(descriptor_type::wait_read,
                                   [self = this->weak_from_this(), watch](std::error_code ec) {
                                     watch->reading = false;
                                     if (auto owner = self.lock()) owner->on_ready(watch, CURL_CSELECT_IN, ec);
                                   });
    }
    if ((watch->wanted & CURL_POLL_OUT) != 0 && !watch->writing) {
      watch->writing = true;
      watch->descriptor.async_wait(descriptor_type::wait_write,
                                   [self = this->weak_from_this(), watch](std::error_code ec) {
                                     watch->writing = false;
                                     if (auto owner = self.lock()) owner->on_ready(watch, CURL_CSELECT_OUT, ec);
                                   });
    }
  }

  void on_ready(const std::shared_ptr<socket_watch>& watch, int direction, std::error_code ec) {
    if (!watch->active || ec == asio::error::operation_aborted) return;
    const int wanted = direction == CURL_CSELECT_IN ? CURL_POLL_IN : CURL_POLL_OUT;
    // Not wanted any more: let the wait lapse (it is re-armed when wanted).
    if ((watch->wanted & wanted) == 0) return;
    act(watch->socket, direction | (ec ? CURL_CSELECT_ERR : 0));
    if (watch->active) arm(watch);
  }

  /// Stops watching `socket`, if it is watched: the descriptor is released,
  /// not closed, and pending waits end as stale.
  void forget_socket(curl_socket_t socket) noexcept {
    const auto it = sockets_.find(socket);
    if (it == sockets_.end()) return;
    const auto watch = it->second;
    sockets_.erase(it);
    release(*watch);
  }

  static void release(socket_watch& watch) noexcept {
    watch.active = false;
    if (watch.descriptor.is_open()) (void)watch.descriptor.release();
  }

  void set_timer(long timeout_ms) {
    ++timer_generation_;
    if (timeout_ms < 0 || shut_down_) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    timer_.async_wait([self = this->weak_from_this(), generation = timer_generation_](std::error_code ec) {
      auto owner = self.lock();
      if (!owner || ec || generation != owner->timer_generation_ || owner->shut_down_) return;
      owner->act(CURL_SOCKET_TIMEOUT, 0);
    });
  }

  // --- libcurl callbacks: C functions, so nothing may escape them ---

  static int on_socket(CURL*, curl_socket_t socket, int what, void* user, void*) noexcept {
    try {
      static_cast<http_client_impl*>(user)->watch_socket(socket, what);
      return 0;
    } catch (...) {
      return -1;
    }
  }

  static int on_timer(CURLM*, long timeout_ms, void* user) noexcept {
    try {
      static_cast<http_client_impl*>(user)->set_timer(timeout_ms);
      return 0;
    } catch (...) {
      return -1;
    }
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    try {
      add_header_line(static_cast<http_transfer_base*>(user)->response.headers,
                              std::string_view(data, size * count));
      return size * count;
    } catch (...) {
      return 0;  // curl fails the transfer with CURLE_WRITE_ERROR
    }
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    try {
      auto& t = *static_cast<http_transfer_base*>(user);
      const auto bytes = size * count;
      long status = 0;
      if (t.request.download_fd >= 0 && curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
          status / 100 == 2) {
        for (std::size_t written = 0; written < bytes;) {
          const auto n = ::pwrite(t.request.download_fd, data + written, bytes - written,
                                  static_cast<off_t>(t.response.body_size + written));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) return 0;  // CURLE_WRITE_ERROR
          written += static_cast<std::size_t>(n);
        }
      } else {
        t.response.body.append(data, bytes);
      }
      t.response.body_size += bytes;
      return bytes;
    } catch (...) {
      return 0;
    }
  }

  // The next block of a streamed request body, read from its file.
  static std::size_t on_read(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto& t = *static_cast<http_transfer_base*>(user);
    const auto& source = *t.request.upload;
    const auto wanted = std::min<std::uint64_t>(size * count, source.length - t.uploaded);
    if (wanted == 0) return 0;
    for (;;) {
      const auto n = ::pread(source.fd, data, static_cast<std::size_t>(wanted),
                             static_cast<off_t>(source.offset + t.uploaded));
      if (n < 0 && errno == EINTR) continue;
      // A file that shrank while being sent, or a read error: fail the
      // transfer (CURLE_ABORTED_BY_CALLBACK) rather than send less than the
      // Content-Length promised.
      if (n <= 0) return CURL_READFUNC_ABORT;
      t.uploaded += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }

  // Rewinds a streamed request body (curl does that to send it again).
  static int on_seek(void* user, curl_off_t offset, int origin) noexcept {
    auto& t = *static_cast<http_transfer_base*>(user);
    if (origin != SEEK_SET || offset < 0 || static_cast<std::uint64_t>(offset) > t.request.upload->length) {
      return CURL_SEEKFUNC_CANTSEEK;
    }
    t.uploaded = static_cast<std::uint64_t>(offset);
    return CURL_SEEKFUNC_OK;
  }

  // Close-on-exec, so a child process the application starts inherits none.
  static curl_socket_t on_open_socket(void*, curlsocktype purpose, curl_sockaddr* address) noexcept {
    if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  }

  // The watcher goes before the descriptor number is free to be reused.
  static int on_close_socket(void* user, curl_socket_t socket) noexcept {
    static_cast<http_client_impl*>(user)->forget_socket(socket);
    return ::close(socket);
  }

  Executor executor_;
  http_options options_;
  timer_type timer_;
  unsigned long timer_generation_ = 0;
  bool shut_down_ = false;
  std::unique_ptr<curl_slist, slist_deleter> resolve_list_{};
  std::unordered_map<curl_socket_t, std::shared_ptr<socket_watch>> sockets_{};
  std::unordered_map<CURL*, std::shared_ptr<http_transfer_base>> transfers_{};
  // Last: its cleanup (in shutdown) calls back into the members above.
  std::unique_ptr<CURLM, multi_deleter> multi_{};
};

}  // namespace detail

/// An HTTP client that runs libcurl's multi-socket interface on an Asio
/// executor: no thread of its own, many transfers at once (connections are
/// kept and reused between requests).
///
/// Not thread-safe: use one client from one thread or strand (its
/// executor's); many concurrent `async_perform` calls are fine.
///
/// Destroying the client aborts every transfer in flight: each handler
/// completes (later, on its executor) with `asio::error::operation_aborted`,
/// and nothing refers to the client afterwards. See the file comment about
/// host names and threads.
template <class Executor = asio::any_io_executor>
class basic_http_client {
 public:
  /// The executor the client's I/O runs on.
  using executor_type = Executor;

  /// The client type on another executor.
  template <class OtherExecutor>
  struct rebind_executor {
    /// The rebound type.
    using other = basic_http_client<OtherExecutor>;
  };

  /// A client whose I/O runs on `executor`. Throws std::runtime_error when
  /// libcurl cannot be set up, std::bad_alloc.
  explicit basic_http_client(const executor_type& executor, http_options options = {})
      : impl_(std::make_shared<impl>(executor, std::move(options))) {}

  /// A client on `context`'s executor.
  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_http_client(ExecutionContext& context, http_options options = {})
      : basic_http_client(executor_type(context.get_executor()), std::move(options)) {}

  /// Aborts the transfers in flight (their handlers get operation_aborted).
  ~basic_http_client() {
    if (impl_) impl_->shutdown();
  }

  basic_http_client(const basic_http_client&) = delete;
  basic_http_client& operator=(const basic_http_client&) = delete;
  /// Moves the client; only destruction is allowed on the moved-from one.
  basic_http_client(basic_http_client&&) noexcept = default;
  basic_http_client& operator=(basic_http_client&&) = delete;

  /// The executor the client's I/O runs on.
  executor_type get_executor() const noexcept { return impl_->executor(); }

  /// The options in effect.
  const http_options& options() const noexcept { return impl_->options(); }

  /// How many transfers are in flight.
  std::size_t in_flight() const noexcept { return impl_->in_flight(); }

  /// Performs `request`.
  ///
  /// Completion signature: `void(std::error_code, http_response)`. Any HTTP
  /// status is a success (the code is empty and `status` says what the
  /// server answered). Errors: a transport failure as a code in
  /// `http_category()` (CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT,
  /// CURLE_GOT_NOTHING, ...), with curl's details in `error_text`;
  /// CURLE_BAD_FUNCTION_ARGUMENT when the method, URL or a header has
  /// characters that would change the request head; and
  /// `asio::error::operation_aborted` when cancelled or when the client is
  /// destroyed. The handler never runs inside this call; it runs on its
  /// associated executor (default: the client's).
  /// Cancellation: terminal and partial (total is ignored): the transfer is
  /// stopped at once and its connection closed; the server may or may not
  /// have acted on the request.
  template <asio::completion_token_for<void(std::error_code, http_response)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_perform(http_request request,
                     CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code, http_response)>(
        [state = impl_](auto handler, http_request request) { state->start(std::move(handler), std::move(request)); },
        token, std::move(request));
  }

 private:
  using impl = detail::http_client_impl<Executor>;
  std::shared_ptr<impl> impl_;
};

/// The HTTP client on `asio::any_io_executor`.
using http_client = basic_http_client<>;

}  // namespace storewatch::s3
