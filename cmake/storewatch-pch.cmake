# Precompiled headers for the project's own programs
# (STOREWATCH_PRECOMPILE_HEADERS; scripts/test.sh turns it on in its clang
# builds, and says why not in its g++ -O3 one): parsing
# storewatch's, Asio's, nlohmann_json's, CLI11's and Catch's headers takes
# about 8-10 s of CPU per source file (g++ 12 -O3 and clang 16 with the
# sanitizers alike), and CI's builds compile some 20-30 source files each.
# Three headers are precompiled once per build and reused by every program
# of their kind:
#   storewatch_test_pch     the test programs (STOREWATCH_TESTING, Catch, the S3 store)
#   storewatch_program_pch  the tool, the benchmarks and the tests' helper
#                           processes that link the S3 store (and CLI11)
#   storewatch_core_pch     those that link the core alone (made when one asks)
# The examples are compiled without: they are what users copy, and a missing
# include must show. A reused header must be compiled with the same macros as
# the program using it: g++ ignores it otherwise (-Winvalid-pch, which CMake
# adds, makes that an error under -Werror), clang refuses a macro defined
# differently but accepts one the program defines and the header was made
# without. So every test program has storewatch_test_main's definitions
# (which include the S3 store's and the OpenSSL ones), and a program gets the
# header made with the S3 store's definitions exactly when it links
# storewatch::s3 itself (storewatch_reuse_program_precompiled_header): a
# program that got STOREWATCH_WITH_S3 some other way would be compiled by
# clang as if it had no S3 store, and by g++ not at all.
option(STOREWATCH_PRECOMPILE_HEADERS "Compile the tests, the tool and the benchmarks with precompiled headers" OFF)

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

# The programs' header with the S3 store (made before the tool's folder is
# added, where the S3 store is built); the core's is made when a program
# first asks for it.
function(storewatch_program_precompiled_headers)
  if(TARGET storewatch::s3)
    storewatch_precompiled_header(storewatch_program_pch program.hpp storewatch::s3 storewatch_warnings
                                  $<TARGET_NAME_IF_EXISTS:CLI11::CLI11>)
  endif()
endfunction()

# storewatch_reuse_program_precompiled_header(TARGET...): each TARGET (a
# program, not a test) reuses the programs' header that matches what it links:
# call it after target_link_libraries.
function(storewatch_reuse_program_precompiled_header)
  foreach(target IN LISTS ARGN)
    get_target_property(libraries ${target} LINK_LIBRARIES)
    if("storewatch::s3" IN_LIST libraries)
      storewatch_reuse_precompiled_header(${target} storewatch_program_pch)
    else()
      if(STOREWATCH_PRECOMPILE_HEADERS AND NOT TARGET storewatch_core_pch)
        storewatch_precompiled_header(storewatch_core_pch program.hpp storewatch::storewatch storewatch_warnings
                                      $<TARGET_NAME_IF_EXISTS:CLI11::CLI11>)
      endif()
      storewatch_reuse_precompiled_header(${target} storewatch_core_pch)
    endif()
  endforeach()
endfunction()
