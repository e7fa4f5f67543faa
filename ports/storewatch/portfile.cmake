# vcpkg port of storewatch. The core is header-only. The `s3` feature adds
# the S3 object-storage store, storewatch::s3: headers too, whose users link
# OpenSSL's libcrypto, pugixml and libcurl (the feature's dependencies).
# The `redis` feature adds the Redis wake-up hints for S3 listeners,
# storewatch::redis: headers too, whose users link hiredis.
# The `tools` feature builds the storewatch command-line tool (which also
# opens s3:// stores when `s3` is on, and takes `tail --hints` when `redis`
# is). tests/package/ runs this file's CMake invocation in CI through
# stand-ins for vcpkg's helper functions.
# source: begin
# The source. This is an overlay port of a local checkout, usable before any
# release: STOREWATCH_SOURCE_PATH names the checkout (docs/building.md),
#   STOREWATCH_SOURCE_PATH=/path/to/storewatch vcpkg install "storewatch[s3]" --overlay-ports=/path/to/storewatch/ports
# (on Windows also list it in VCPKG_KEEP_ENV_VARS: vcpkg clears the build
# environment there). ports/release.sh writes the release form of this port,
# downloading a tag with vcpkg_from_github and its SHA512, for a registry.
if(NOT DEFINED ENV{STOREWATCH_SOURCE_PATH})
  message(FATAL_ERROR "storewatch's overlay port builds a local checkout: set STOREWATCH_SOURCE_PATH to its root "
                      "(ports/release.sh writes the port that downloads a release)")
endif()
set(SOURCE_PATH "$ENV{STOREWATCH_SOURCE_PATH}")
if(NOT EXISTS "${SOURCE_PATH}/include/storewatch/storewatch.hpp")
  message(FATAL_ERROR "STOREWATCH_SOURCE_PATH=${SOURCE_PATH} is not a storewatch checkout")
endif()
# source: end

# A feature turns its option ON; without it, vcpkg passes it OFF.
vcpkg_check_features(OUT_FEATURE_OPTIONS feature_options
  FEATURES
    tools STOREWATCH_BUILD_TOOLS
    s3 STOREWATCH_BUILD_S3
    redis STOREWATCH_BUILD_REDIS
)

# Only the tool is compiled; one release build serves.
set(VCPKG_BUILD_TYPE release)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DSTOREWATCH_BUILD_TESTS=OFF
    -DSTOREWATCH_BUILD_EXAMPLES=OFF
    -DSTOREWATCH_BUILD_BENCHMARKS=OFF
    -DSTOREWATCH_WERROR=OFF
    -DSTOREWATCH_INSTALL=ON
    ${feature_options}
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/storewatch)
vcpkg_fixup_pkgconfig()

if("tools" IN_LIST FEATURES)
  vcpkg_copy_tools(TOOL_NAMES storewatch AUTO_CLEAN)
endif()

# The license goes to share/storewatch/copyright, as vcpkg wants, and not
# also where the CMake install put it.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
