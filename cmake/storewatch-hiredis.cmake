# Provides the target hiredis::hiredis for the hiredis C client, if it is
# found. Used by storewatch's own CMakeLists.txt and by the installed
# storewatch-config.cmake (component redis), so a consumer finds hiredis the
# same way the build did.
#
# Packages that define hiredis::hiredis themselves (vcpkg's hiredis port and
# Conan's CMakeDeps install a hiredis-config.cmake) are used as they are;
# Debian's libhiredis-dev (0.14) ships a HiredisConfig.cmake that
# find_package(hiredis) does not find and that defines no target, so there
# the header and library are looked up and an imported target made for them.
if(TARGET hiredis::hiredis)
  return()
endif()
find_package(hiredis CONFIG QUIET)
if(TARGET hiredis::hiredis)
  return()
endif()
find_path(STOREWATCH_HIREDIS_INCLUDE_DIR hiredis/async.h DOC "Directory holding hiredis/async.h")
find_library(STOREWATCH_HIREDIS_LIBRARY hiredis DOC "The hiredis library")
if(NOT STOREWATCH_HIREDIS_INCLUDE_DIR OR NOT STOREWATCH_HIREDIS_LIBRARY)
  return()  # the caller reports it
endif()
add_library(hiredis::hiredis UNKNOWN IMPORTED)
set_target_properties(hiredis::hiredis PROPERTIES
  IMPORTED_LOCATION "${STOREWATCH_HIREDIS_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${STOREWATCH_HIREDIS_INCLUDE_DIR}"
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${STOREWATCH_HIREDIS_INCLUDE_DIR}")
