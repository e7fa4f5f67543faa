// The helper programs that the multi-process tests spawn: their paths come
// from tests/system/CMakeLists.txt (and tests/s3/CMakeLists.txt).
#pragma once

#include <string>

namespace storewatch::test {

/// tests/system/writer_process.cpp: publishes numbered events.
inline const std::string writer_program = STOREWATCH_WRITER_PROCESS;
/// tests/system/listener_process.cpp: prints what a listener delivers.
inline const std::string listener_program = STOREWATCH_LISTENER_PROCESS;

}  // namespace storewatch::test
