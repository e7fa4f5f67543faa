# The s3rver test server (scripts/s3-server.sh) as a CTest fixture named
# `s3rver`: the tests `s3rver_start` and `s3rver_stop` start it before the
# tests that say `FIXTURES_REQUIRED s3rver` and stop it after them. With
# STOREWATCH_S3_ENDPOINT set (a MinIO or AWS bucket of the user's) the script
# does neither, and the tests use that store.
#
# Included by path from tests/s3/CMakeLists.txt and benchmarks/CMakeLists.txt
# (either may be added without the other):
#
#   include("${PROJECT_SOURCE_DIR}/cmake/storewatch-s3rver.cmake")
#   storewatch_s3rver_fixture()
#   ... ENVIRONMENT "STOREWATCH_S3_STATE_DIR=${storewatch_s3rver_state}"
#
# The fixture is defined once per build, by the first call; every call sets
# `storewatch_s3rver_state` in the caller's scope: the server's state folder
# (PID, port, bucket, log, data), which tests find it by.

include_guard(GLOBAL)

function(storewatch_s3rver_fixture)
  set(state "${CMAKE_BINARY_DIR}/s3rver")
  get_filename_component(script "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../scripts/s3-server.sh" ABSOLUTE)
  set(storewatch_s3rver_state "${state}" PARENT_SCOPE)
  get_property(defined GLOBAL PROPERTY storewatch_s3rver_fixture_defined)
  if(defined)
    return()
  endif()
  set_property(GLOBAL PROPERTY storewatch_s3rver_fixture_defined TRUE)
  add_test(NAME s3rver_start COMMAND "${script}" start)
  set_tests_properties(s3rver_start PROPERTIES
    FIXTURES_SETUP s3rver TIMEOUT 120
    ENVIRONMENT "STOREWATCH_S3_STATE_DIR=${state};STOREWATCH_S3_PORT=0")
  # `stop` removes the server's data, and a slow disk behind a busy CI
  # machine took over 60 s for that once (when a 1 GiB object was left
  # there): a generous bound, and the script says how long each step took.
  add_test(NAME s3rver_stop COMMAND "${script}" stop)
  set_tests_properties(s3rver_stop PROPERTIES
    FIXTURES_CLEANUP s3rver TIMEOUT 300
    ENVIRONMENT "STOREWATCH_S3_STATE_DIR=${state}")
endfunction()
