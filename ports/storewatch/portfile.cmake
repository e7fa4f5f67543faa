# vcpkg port of storewatch. The core is header-only. The `s3` feature adds
# the S3 object-storage store, storewatch::s3: headers too, whose users link
# OpenSSL's libcrypto, pugixml and libcurl (the feature's dependencies).
# The `tools` feature builds the storewatch command-line tool (which also
# opens s3:// stores when `s3` is on). tests/package/ runs this file's CMake
# invocation in CI through stand-ins for vcpkg's helper functions.
vcpkg_from_github(
  OUT_SOURCE_PATH SOURCE_PATH
  REPO storewatch/storewatch
  REF "v${VERSION}"
  SHA512 0  # set when a release is tagged: vcpkg prints the real hash
  HEAD_REF main
)

# A feature turns its option ON; without it, vcpkg passes it OFF.
vcpkg_check_features(OUT_FEATURE_OPTIONS feature_options
  FEATURES
    tools STOREWATCH_BUILD_TOOLS
    s3 STOREWATCH_BUILD_S3
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

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
