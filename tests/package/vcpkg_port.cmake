# Runs ports/storewatch/portfile.cmake without vcpkg (which cannot reach its
# registry here): vcpkg's helper functions are replaced by stand-ins that do
# what vcpkg would do with the port's arguments, so the CMake configure and
# install the port asks for are the ones that run.
#
#   cmake -DSOURCE=<repo> -DWORK=<scratch dir> -DFEATURES=tools,s3,redis -P vcpkg_port.cmake
#
# FEATURES is a comma-separated list (empty: the core alone). The package
# lands in WORK/packages, laid out as vcpkg installs it. The port's
# dependencies come from this machine (storewatch's CMake build finds them),
# not from vcpkg's registry.
cmake_minimum_required(VERSION 3.20)
foreach(var SOURCE WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "vcpkg_port.cmake: -D${var}= is required")
  endif()
endforeach()

set(PORT storewatch)
set(CMAKE_CURRENT_LIST_DIR_OF_PORT "${SOURCE}/ports/storewatch")
file(READ "${CMAKE_CURRENT_LIST_DIR_OF_PORT}/vcpkg.json" manifest)
string(JSON VERSION GET "${manifest}" version-semver)
string(REPLACE "," ";" FEATURES "${FEATURES}")
foreach(feature IN LISTS FEATURES)
  string(JSON feature_description ERROR_VARIABLE no_feature GET "${manifest}" features ${feature} description)
  if(no_feature)
    message(FATAL_ERROR "vcpkg_port.cmake: vcpkg.json declares no feature '${feature}'")
  endif()
endforeach()
set(CURRENT_PACKAGES_DIR "${WORK}/packages")
file(REMOVE_RECURSE "${WORK}")
set(configure_options "")

function(vcpkg_check_features)
  cmake_parse_arguments(arg "" "OUT_FEATURE_OPTIONS" "FEATURES" ${ARGN})
  set(options "")
  while(arg_FEATURES)
    list(POP_FRONT arg_FEATURES feature option)
    if(feature IN_LIST FEATURES)
      list(APPEND options "-D${option}=ON")
    else()
      list(APPEND options "-D${option}=OFF")
    endif()
  endwhile()
  set(${arg_OUT_FEATURE_OPTIONS} "${options}" PARENT_SCOPE)
endfunction()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "vcpkg_port.cmake: '${command}' failed (${status})")
  endif()
endfunction()

function(vcpkg_cmake_configure)
  cmake_parse_arguments(arg "" "SOURCE_PATH" "OPTIONS" ${ARGN})
  message(STATUS "port configure options: ${arg_OPTIONS}")
  set_property(GLOBAL PROPERTY port_configure_options "${arg_OPTIONS}")
  # A Release build as vcpkg's, but without optimizing: what this checks is
  # the port's options and what it installs (the optimized build and its
  # warnings are the main build's), and -O3 took most of the test's time.
  run("${CMAKE_COMMAND}" -S "${arg_SOURCE_PATH}" -B "${WORK}/build" -G Ninja -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_CXX_FLAGS_RELEASE=-DNDEBUG "-DCMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR}" ${arg_OPTIONS})
endfunction()

function(vcpkg_cmake_install)
  run("${CMAKE_COMMAND}" --build "${WORK}/build")
  run("${CMAKE_COMMAND}" --install "${WORK}/build")
endfunction()

function(vcpkg_cmake_config_fixup)
  cmake_parse_arguments(arg "" "CONFIG_PATH" "" ${ARGN})
  # vcpkg moves CONFIG_PATH to share/${PORT}; the port must already use that.
  if(NOT arg_CONFIG_PATH STREQUAL "share/${PORT}" OR NOT EXISTS "${CURRENT_PACKAGES_DIR}/share/${PORT}/${PORT}-config.cmake")
    message(FATAL_ERROR "vcpkg_port.cmake: no package config at ${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}")
  endif()
endfunction()

function(vcpkg_fixup_pkgconfig)
  file(GLOB pc_files "${CURRENT_PACKAGES_DIR}/share/pkgconfig/*.pc" "${CURRENT_PACKAGES_DIR}/lib/pkgconfig/*.pc")
  if(NOT pc_files)
    message(FATAL_ERROR "vcpkg_port.cmake: no pkg-config file installed")
  endif()
endfunction()

function(vcpkg_copy_tools)
  cmake_parse_arguments(arg "AUTO_CLEAN" "" "TOOL_NAMES" ${ARGN})
  foreach(tool IN LISTS arg_TOOL_NAMES)
    file(MAKE_DIRECTORY "${CURRENT_PACKAGES_DIR}/tools/${PORT}")
    file(RENAME "${CURRENT_PACKAGES_DIR}/bin/${tool}" "${CURRENT_PACKAGES_DIR}/tools/${PORT}/${tool}")
  endforeach()
  if(arg_AUTO_CLEAN)
    file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/bin")
  endif()
endfunction()

function(vcpkg_install_copyright)
  cmake_parse_arguments(arg "" "" "FILE_LIST" ${ARGN})
  file(READ "${arg_FILE_LIST}" text)
  file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright" "${text}")
endfunction()

# The port as an overlay port of this checkout (STOREWATCH_SOURCE_PATH, as
# docs/building.md tells users). The portfile refers to its own folder as
# CMAKE_CURRENT_LIST_DIR, which include() sets.
set(ENV{STOREWATCH_SOURCE_PATH} "${SOURCE}")
include("${CMAKE_CURRENT_LIST_DIR_OF_PORT}/portfile.cmake")

# What a vcpkg user gets.
set(expected include/storewatch/storewatch.hpp include/storewatch/version.hpp share/storewatch/storewatch-config.cmake
             share/storewatch/storewatch-config-version.cmake share/storewatch/usage share/storewatch/copyright
             share/pkgconfig/storewatch.pc)
if("tools" IN_LIST FEATURES)
  list(APPEND expected tools/storewatch/storewatch)
endif()
foreach(file IN LISTS expected)
  if(NOT EXISTS "${CURRENT_PACKAGES_DIR}/${file}")
    message(FATAL_ERROR "vcpkg_port.cmake: the port did not install ${file}")
  endif()
endforeach()
if(EXISTS "${CURRENT_PACKAGES_DIR}/bin" OR EXISTS "${CURRENT_PACKAGES_DIR}/debug")
  message(FATAL_ERROR "vcpkg_port.cmake: bin/ or debug/ left in the package")
endif()
# The license once: share/storewatch/copyright.
file(GLOB_RECURSE licenses RELATIVE "${CURRENT_PACKAGES_DIR}" "${CURRENT_PACKAGES_DIR}/*LICENSE*"
     "${CURRENT_PACKAGES_DIR}/*copyright*")
if(NOT licenses STREQUAL "share/storewatch/copyright")
  message(FATAL_ERROR "vcpkg_port.cmake: the license is installed as ${licenses}, not once as share/storewatch/copyright")
endif()

# The s3 and redis features: the option each follows (without it a
# machine with the libraries still builds the package without them), the
# headers and target that come with it only (each exported on its own,
# storewatch-<feature>-targets.cmake), the files it installs, and the ports
# it depends on.
get_property(configure_options GLOBAL PROPERTY port_configure_options)
file(GLOB exported_files "${CURRENT_PACKAGES_DIR}/share/storewatch/storewatch*-targets.cmake")
set(exported_targets "")
foreach(exported_file IN LISTS exported_files)
  file(READ "${exported_file}" text)
  string(APPEND exported_targets "${text}")
endforeach()

# check_feature(FEATURE OPTION HEADER_DIR FILES... DEPENDS PORTS...): FILES
# (under the package) come with FEATURE, HEADER_DIR and storewatch::FEATURE
# only with it; PORTS are its dependencies in vcpkg.json.
function(check_feature feature option header_dir)
  cmake_parse_arguments(arg "" "" "DEPENDS" ${ARGN})
  if(feature IN_LIST FEATURES)
    set(passed "-D${option}=ON")
    foreach(file IN LISTS arg_UNPARSED_ARGUMENTS)
      if(NOT EXISTS "${CURRENT_PACKAGES_DIR}/${file}")
        message(FATAL_ERROR "vcpkg_port.cmake: the ${feature} feature did not install ${file}")
      endif()
    endforeach()
    if(NOT exported_targets MATCHES "storewatch::${feature}")
      message(FATAL_ERROR "vcpkg_port.cmake: the ${feature} feature did not install storewatch::${feature}")
    endif()
  else()
    set(passed "-D${option}=OFF")
    if(EXISTS "${CURRENT_PACKAGES_DIR}/${header_dir}" OR exported_targets MATCHES "storewatch::${feature}")
      message(FATAL_ERROR "vcpkg_port.cmake: storewatch::${feature} or its headers installed without the ${feature} feature")
    endif()
  endif()
  if(NOT passed IN_LIST configure_options)
    message(FATAL_ERROR "vcpkg_port.cmake: the port did not pass ${passed} (it passed: ${configure_options})")
  endif()
  string(JSON count LENGTH "${manifest}" features ${feature} dependencies)
  set(names "")
  math(EXPR last "${count} - 1")
  foreach(i RANGE ${last})
    string(JSON dependency GET "${manifest}" features ${feature} dependencies ${i})
    string(JSON name ERROR_VARIABLE not_an_object GET "${dependency}" name)
    if(not_an_object)
      set(name "${dependency}")
    endif()
    list(APPEND names "${name}")
  endforeach()
  list(SORT names)
  if(NOT names STREQUAL arg_DEPENDS)
    message(FATAL_ERROR "vcpkg_port.cmake: the ${feature} feature depends on '${names}', not '${arg_DEPENDS}'")
  endif()
endfunction()
check_feature(s3 STOREWATCH_BUILD_S3 include/storewatch/s3 include/storewatch/store/s3_store.hpp
              DEPENDS curl openssl pugixml)
check_feature(redis STOREWATCH_BUILD_REDIS include/storewatch/redis include/storewatch/redis/hints.hpp
              share/storewatch/storewatch-hiredis.cmake share/pkgconfig/storewatch-redis.pc DEPENDS hiredis)
message(STATUS "vcpkg port: installed to ${CURRENT_PACKAGES_DIR} with features '${FEATURES}'")
