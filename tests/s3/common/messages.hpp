// The message of a configuration error, for the tests of s3/config.hpp and
// s3/resolve.hpp, which check what each error names.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace storewatch::s3::test {

/// The message of the std::invalid_argument `call` throws; fails the test
/// if it throws none.
inline std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("no std::invalid_argument");
  return {};
}

}  // namespace storewatch::s3::test
