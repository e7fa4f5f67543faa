// Tests for storewatch/version.hpp: generated from the CMake project version.
#include "common/fixture.hpp"

#include <storewatch/version.hpp>

#include <string>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace version_test {

TEST_CASE("the version macros agree with each other and with the CMake project version") {
  const std::string parts = std::to_string(STOREWATCH_VERSION_MAJOR) + "." + std::to_string(STOREWATCH_VERSION_MINOR) +
                            "." + std::to_string(STOREWATCH_VERSION_PATCH);
  CHECK(parts == STOREWATCH_VERSION_STRING);
  CHECK(std::string(STOREWATCH_VERSION_STRING) == STOREWATCH_TEST_PROJECT_VERSION);
  CHECK(STOREWATCH_VERSION ==
        STOREWATCH_VERSION_MAJOR * 10000 + STOREWATCH_VERSION_MINOR * 100 + STOREWATCH_VERSION_PATCH);
  static_assert(STOREWATCH_VERSION_MINOR < 100 && STOREWATCH_VERSION_PATCH < 100, "STOREWATCH_VERSION packs them");
}

}  // namespace version_test
