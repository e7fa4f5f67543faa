"""Conan 2 recipe for storewatch.

The core is header-only (one package id for every configuration); the
``tools`` option builds the storewatch command-line tool and ``s3`` the
object-storage store, which make the package configuration-specific.
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
        self.requires("asio/[>=1.22.1 <2]")
        self.requires("nlohmann_json/[>=3.10 <4]")
        self.requires("zlib/[>=1.2.11 <2]")
        if self.options.s3:
            self.requires("libcurl/[>=7.88 <9]")
            self.requires("openssl/[>=3 <4]")
            self.requires("pugixml/[>=1.13 <2]")

    def package_id(self):
        if not self.info.options.tools and not self.info.options.s3:
            self.info.clear()

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
        self.cpp_info.set_property("cmake_target_name", "storewatch::storewatch")
        self.cpp_info.set_property("pkg_config_name", "storewatch")
        self.cpp_info.libdirs = []
        self.cpp_info.bindirs = ["bin"] if self.options.tools else []
        self.cpp_info.defines = ["ASIO_STANDALONE"]
        self.cpp_info.requires = ["asio::asio", "nlohmann_json::nlohmann_json", "zlib::zlib"]
        if self.settings.os == "Linux":
            self.cpp_info.system_libs = ["pthread"]
