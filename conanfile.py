"""Conan 2 recipe for storewatch.

The core is header-only (one package id for every configuration). The
``s3`` option adds the S3 store, storewatch::s3: headers too, whose users
link OpenSSL's libcrypto, pugixml and libcurl. The ``tools`` option builds
the storewatch command-line tool (linking those libraries too when ``s3`` is
on), which makes the package configuration-specific.
tests/package/conan_recipe.py runs this recipe's CMake invocation in CI
through stand-ins for Conan's classes.
"""
import os
import re

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load


class StorewatchConan(ConanFile):
    name = "storewatch"
    license = "BSL-1.0"
    description = ("Real-time notifications of file operations on a shared, "
                   "versioned file store, for Asio services")
    topics = ("asio", "coroutines", "file-events", "notifications", "header-only")
    settings = "os", "arch", "compiler", "build_type"
    options = {"tools": [True, False], "s3": [True, False]}
    default_options = {"tools": False, "s3": False}
    exports_sources = ("CMakeLists.txt", "LICENSE", "cmake/*", "include/*", "tools/*")

    def set_version(self):
        # The CMake project version is the one source of the version.
        cmake = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = re.search(r"project\(storewatch VERSION (\d+\.\d+\.\d+)", cmake).group(1)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # storewatch's headers include these libraries' headers and call
        # them: its users compile against them and link the compiled ones, so
        # headers and libraries are passed on. (Conan would not pass on a
        # header-only dependency's headers, such as Asio's, by default.)
        self.requires("asio/[>=1.22.1 <2]", transitive_headers=True)
        self.requires("nlohmann_json/[>=3.10 <4]", transitive_headers=True)
        self.requires("zlib/[>=1.2.11 <2]", transitive_headers=True, transitive_libs=True)
        if self.options.s3:
            # The minimum versions are the ones storewatch's CMake package
            # asks for (cmake/storewatch-config.cmake.in).
            self.requires("openssl/[>=3 <4]", transitive_headers=True, transitive_libs=True)
            self.requires("pugixml/[>=1.11 <2]", transitive_headers=True, transitive_libs=True)
            self.requires("libcurl/[>=7.80 <9]", transitive_headers=True, transitive_libs=True)
        if self.options.tools:
            # The tool's command line and ISO 8601 times; header-only, and
            # nothing of them reaches the library's users.
            self.requires("cli11/[>=2.1 <3]", visible=False)
            self.requires("date/[>=3 <4]", visible=False)

    def package_id(self):
        if self.info.options.tools:
            # The tool is compiled and linked (with s3, against libcrypto,
            # pugixml and libcurl): the default id, from the settings, the
            # options and the requirements' versions, is the right one.
            return
        if not self.info.options.s3:
            # The header-only core: the same files for every configuration.
            self.info.clear()
            return
        # The S3 store is headers too: nothing of this package is compiled
        # or linked here. The consumer compiles the S3 headers and links
        # libcrypto, pugixml and libcurl itself, from the versions its own
        # graph resolves (they are its requirements through this package,
        # and count in its package id). So the files here do not depend on
        # the settings or on the requirements' versions, only on the options:
        # one id with s3 and one without, not one per configuration.
        self.info.settings.clear()
        self.info.requires.clear()

    def generate(self):
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["STOREWATCH_BUILD_TESTS"] = False
        toolchain.cache_variables["STOREWATCH_BUILD_EXAMPLES"] = False
        toolchain.cache_variables["STOREWATCH_BUILD_BENCHMARKS"] = False
        toolchain.cache_variables["STOREWATCH_WERROR"] = False
        toolchain.cache_variables["STOREWATCH_INSTALL"] = True
        toolchain.cache_variables["STOREWATCH_BUILD_TOOLS"] = bool(self.options.tools)
        toolchain.cache_variables["STOREWATCH_BUILD_S3"] = bool(self.options.s3)
        toolchain.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        CMake(self).install()
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "storewatch")
        if not self.options.s3:
            # One target, as storewatch's CMake package has without S3.
            self.cpp_info.set_property("cmake_target_name", "storewatch::storewatch")
            self.cpp_info.set_property("pkg_config_name", "storewatch")
            self._core(self.cpp_info)
            return
        # With S3, the targets of storewatch's CMake package as components:
        # storewatch::storewatch, the core alone, and storewatch::s3. CMakeDeps
        # also makes a target for the whole package that links every
        # component; named storewatch::storewatch it would give the S3
        # store's libraries to every user of the core, so it is storewatch::all.
        self.cpp_info.set_property("cmake_target_name", "storewatch::all")
        self.cpp_info.set_property("pkg_config_name", "storewatch-all")
        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "storewatch::storewatch")
        core.set_property("pkg_config_name", "storewatch")
        self._core(core)
        s3 = self.cpp_info.components["s3"]
        s3.set_property("cmake_target_name", "storewatch::s3")
        s3.set_property("pkg_config_name", "storewatch-s3")
        s3.libdirs = []
        s3.bindirs = []
        s3.requires = ["core", "openssl::crypto", "pugixml::pugixml", "libcurl::curl"]
        s3.defines = ["STOREWATCH_WITH_S3"]  # as the CMake package's storewatch::s3: store/open_store.hpp's s3:// part

    def _core(self, info):
        """The header-only core's information, on the package or its core component."""
        info.libdirs = []
        info.bindirs = ["bin"] if self.options.tools else []
        info.defines = ["ASIO_STANDALONE"]
        if self.settings.compiler == "clang":
            # As the CMake target: Asio 1.22 does not detect coroutines in
            # clang with libstdc++.
            info.defines += ["ASIO_HAS_CO_AWAIT=1", "ASIO_HAS_STD_COROUTINE=1"]
        info.requires = ["asio::asio", "nlohmann_json::nlohmann_json", "zlib::zlib"]
        if self.settings.os == "Linux":
            info.system_libs = ["pthread"]
