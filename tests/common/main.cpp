// The main of every test program. Test programs are built in groups, several
// test files to a program (tests/CMakeLists.txt, storewatch_test_group):
// every test case is tagged with the name of its file ([#journal_test], as
// Catch's -# option does), so that CTest can list and run one file's tests.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  Catch::Session session;
  if (const int status = session.applyCommandLine(argc, argv); status != 0) {
    return status;
  }
  session.configData().filenamesAsTags = true;
  return session.run();
}
