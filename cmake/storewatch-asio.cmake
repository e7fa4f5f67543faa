# Provides the target asio::asio for standalone Asio, if it is found. Used by
# storewatch's own CMakeLists.txt and by the installed storewatch-config.cmake,
# so a consumer finds Asio the same way the build did.
#
# Asio packages that ship a CMake config (vcpkg's and Conan's) define
# asio::asio themselves; Debian's libasio-dev ships only headers, so without
# a config the header is looked up and an imported target made for it.
if(TARGET asio::asio)
  return()
endif()
find_package(asio CONFIG QUIET)
if(TARGET asio::asio)
  return()
endif()
find_path(STOREWATCH_ASIO_INCLUDE_DIR asio.hpp DOC "Directory holding standalone Asio's asio.hpp")
if(NOT STOREWATCH_ASIO_INCLUDE_DIR)
  return()  # the caller reports it
endif()
add_library(asio::asio INTERFACE IMPORTED)
set_target_properties(asio::asio PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${STOREWATCH_ASIO_INCLUDE_DIR}"
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${STOREWATCH_ASIO_INCLUDE_DIR}"
  INTERFACE_COMPILE_DEFINITIONS ASIO_STANDALONE)
