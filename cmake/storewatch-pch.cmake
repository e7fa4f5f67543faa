# Precompiled headers for the project's own test programs and tool
# (STOREWATCH_PRECOMPILE_HEADERS; scripts/test.sh turns it on): parsing
# storewatch's, Asio's, nlohmann_json's and Catch's headers takes about 8-9 s
# of CPU per source file (g++ 12 -O3 and clang 16 with the sanitizers alike),
# and the tests and the tool are some 25 source files in each of CI's three
# builds. Two headers are precompiled once per build and reused by every
# program of their kind:
#   storewatch_test_pch     the test programs (STOREWATCH_TESTING, Catch, the S3 store)
#   storewatch_program_pch  the tool and the tests' helper processes (CLI11, the S3 store)
# A reused header must be compiled with the same macros as the program using
# it (g++ ignores it otherwise, and -Winvalid-pch, which CMake adds, makes that
# an error under -Werror; clang refuses a macro defined differently), so every
# test program has storewatch_test_main's definitions, which include the S3
# store's and the OpenSSL ones. Examples and benchmarks are compiled without:
# they are what users copy, and must include what they use.
option(STOREWATCH_PRECOMPILE_HEADERS "Compile the tests and the tool with precompiled headers" OFF)

# storewatch_precompiled_header(NAME HEADER LIBRARIES...): the object library
# NAME compiles HEADER (cmake/pch/) with the usage requirements of LIBRARIES.
function(storewatch_precompiled_header name header)
  if(NOT STOREWATCH_PRECOMPILE_HEADERS)
    return()
  endif()
  add_library(${name} OBJECT "${PROJECT_SOURCE_DIR}/cmake/pch/anchor.cpp")
  target_link_libraries(${name} PRIVATE ${ARGN})
  target_precompile_headers(${name} PRIVATE "${PROJECT_SOURCE_DIR}/cmake/pch/${header}")
endfunction()

# storewatch_reuse_precompiled_header(TARGET NAME): TARGET's sources start with
# NAME's precompiled header, when it was made.
function(storewatch_reuse_precompiled_header target name)
  if(TARGET ${name})
    target_precompile_headers(${target} REUSE_FROM ${name})
  endif()
endfunction()
