// The core through storewatch::storewatch: one event published into an
// in-memory source, moved by a poller into a stream and taken with co_await
// (so a compiler for which Asio needs the coroutine defines needs them here).
#include <storewatch/storewatch.hpp>
#include <storewatch/version.hpp>

#ifdef STOREWATCH_WITH_S3
#error "storewatch::storewatch must not carry the s3 component's define"
#endif

#include <cstdio>

namespace {

asio::awaitable<void> take_one(storewatch::event_stream& stream, std::string& name) {
  const auto e = co_await stream.async_next(asio::use_awaitable);
  name = e.name;
}

}  // namespace

int main() {
  asio::io_context io;
  storewatch::memory_source source(io.get_executor());
  storewatch::event_stream stream(io.get_executor(), 8);
  storewatch::poller poller(source, stream);
  source.publish("BUILD_FINISHED", R"({"ok": true})", "ci");
  poller.start();
  std::string name;
  asio::co_spawn(io, take_one(stream, name), [&](std::exception_ptr error) {
    poller.stop();
    if (error) std::rethrow_exception(error);
  });
  io.run();
  std::printf("storewatch %s: took %s\n", STOREWATCH_VERSION_STRING, name.c_str());
  return name == "BUILD_FINISHED" ? 0 : 1;
}
