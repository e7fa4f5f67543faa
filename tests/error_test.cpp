// Tests for storewatch/error.hpp: the "storewatch" error category and errc.
#include "common/fixture.hpp"

#include <storewatch/error.hpp>

#include <cstring>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace error_test {

namespace {

using storewatch::errc;

/// Every errc value, with a word its message must contain so a reader knows
/// which part of the library is speaking.
const std::vector<std::pair<errc, std::string>>& all_errors() {
  static const std::vector<std::pair<errc, std::string>> errors{
      {errc::end_of_stream, "stream"},
      {errc::stopped, "stopped"},
      {errc::invalid_versioned_path, "versioned path"},
      {errc::invalid_event, "event"},
      {errc::invalid_cursor, "cursor"},
      {errc::source_unavailable, "source"},
      {errc::checkpoint_failed, "checkpoint"},
      {errc::handler_failed, "handler"},
      {errc::invalid_path, "path"},
      {errc::invalid_user, "user"},
      {errc::invalid_event_name, "event name"},
      {errc::permission_denied, "permission"},
      {errc::corrupt_record, "journal"},
      {errc::store_io_failed, "store"},
      {errc::wake_ups_unavailable, "wake-ups"},
      {errc::store_access_denied, "access denied"},
      {errc::poller_failed, "poller"},
  };
  return errors;
}

}  // namespace

TEST_CASE("category is named storewatch") {
  CHECK(std::strcmp(storewatch::error_category().name(), "storewatch") == 0);
  CHECK(&storewatch::error_category() == &storewatch::error_category());
  CHECK(std::is_final_v<storewatch::detail::error_category_impl>);
}

TEST_CASE("errc values are non-zero") {
  for (const auto& [value, keyword] : all_errors()) {
    INFO(keyword);
    CHECK(static_cast<int>(value) != 0);
    CHECK(static_cast<bool>(storewatch::make_error_code(value)));
  }
}

TEST_CASE("every errc has a distinct specific message") {
  const auto& category = storewatch::error_category();
  const std::string fallback_prefix = "storewatch error";
  std::set<std::string> seen;
  for (const auto& [value, keyword] : all_errors()) {
    const std::string message = category.message(static_cast<int>(value));
    INFO("errc " << static_cast<int>(value) << ": " << message);
    CHECK(message.size() > 15);
    CHECK(message.rfind(fallback_prefix, 0) == std::string::npos);
    CHECK(message.find(keyword) != std::string::npos);
    CHECK(seen.insert(message).second);
  }
  CHECK(seen.size() == all_errors().size());
}

TEST_CASE("unknown value gets a fallback message") {
  const std::string message = storewatch::error_category().message(9999);
  CHECK(message.find("9999") != std::string::npos);
  for (const auto& [value, keyword] : all_errors()) {
    CHECK(message != storewatch::error_category().message(static_cast<int>(value)));
  }
}

TEST_CASE("errc is an error code enum") {
  STATIC_REQUIRE(std::is_error_code_enum_v<storewatch::errc>);
  STATIC_REQUIRE(std::is_convertible_v<storewatch::errc, std::error_code>);
}

TEST_CASE("make_error_code builds a storewatch code") {
  const std::error_code code = storewatch::make_error_code(errc::invalid_cursor);
  CHECK(code.value() == static_cast<int>(errc::invalid_cursor));
  CHECK(&code.category() == &storewatch::error_category());
  CHECK(std::strcmp(code.category().name(), "storewatch") == 0);
  CHECK(code.message() == storewatch::error_category().message(static_cast<int>(errc::invalid_cursor)));
}

TEST_CASE("errc converts implicitly to error_code") {
  std::error_code code = errc::stopped;
  CHECK(code == storewatch::make_error_code(errc::stopped));
  code = errc::end_of_stream;
  CHECK(code.value() == static_cast<int>(errc::end_of_stream));
  CHECK(&code.category() == &storewatch::error_category());
}

TEST_CASE("error_code compares with errc") {
  const std::error_code code = storewatch::make_error_code(errc::invalid_event);
  CHECK(code == errc::invalid_event);
  CHECK(errc::invalid_event == code);
  CHECK(code != errc::invalid_cursor);
  CHECK_FALSE(code == errc::stopped);
}

TEST_CASE("storewatch codes differ from other categories with the same value") {
  for (const auto& [value, keyword] : all_errors()) {
    INFO(keyword);
    const std::error_code ours = value;
    const std::error_code generic(static_cast<int>(value), std::generic_category());
    const std::error_code system(static_cast<int>(value), std::system_category());
    CHECK(ours != generic);
    CHECK(ours != system);
    CHECK(generic != value);
  }
  CHECK(std::error_code{} != errc::end_of_stream);
  CHECK(std::error_code(errc::stopped) != std::make_error_code(std::errc::operation_canceled));
}

TEST_CASE("default error condition stays in the storewatch category") {
  const std::error_code code = errc::checkpoint_failed;
  const std::error_condition condition = code.default_error_condition();
  CHECK(&condition.category() == &storewatch::error_category());
  CHECK(condition.value() == static_cast<int>(errc::checkpoint_failed));
}

TEST_CASE("system_error what() contains the message") {
  for (const auto& [value, keyword] : all_errors()) {
    const std::system_error error(value, "while testing");
    const std::string what = error.what();
    INFO(what);
    CHECK(error.code() == value);
    CHECK(what.find("while testing") != std::string::npos);
    CHECK(what.find(storewatch::error_category().message(static_cast<int>(value))) != std::string::npos);
  }
}

TEST_CASE("system_error thrown with errc can be caught and matched") {
  try {
    throw std::system_error(errc::source_unavailable);
  } catch (const std::system_error& error) {
    CHECK(error.code() == errc::source_unavailable);
    CHECK(std::string(error.what()).find("source unavailable") != std::string::npos);
    return;
  }
  FAIL("not caught");
}

}  // namespace error_test
