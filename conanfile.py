"""Conan 2 recipe for storewatch, laid out as Conan Center's recipes for
header-only Asio libraries (asio, asio-grpc) are.

storewatch is headers only, so this is a ``header-library`` package: nothing
is built, package() copies the headers (with the generated
``storewatch/version.hpp``) and the license, and the package id is cleared,
one package for every configuration. The S3 store's headers are always in
it; the ``s3`` option adds the requirements they need (OpenSSL's libcrypto,
pugixml, libcurl) and the component ``s3``, so it changes what consumers
link, not the package's files. The Redis wake-up hints' headers are always
in it too; the ``redis`` option adds hiredis and the component ``redis``.

What CMakeDeps makes of package_info is what storewatch's own CMake package
gives (that config is not packaged: CMakeDeps writes the consumer's):
``find_package(storewatch)`` with the targets ``storewatch::storewatch``
(component ``core``), with ``s3``, ``storewatch::s3`` (component ``s3``) and,
with ``redis``, ``storewatch::redis`` (component ``redis``), with the same
compile definitions and libraries. The target CMakeDeps makes
for the whole package is ``storewatch::all``: named storewatch::storewatch it
would clash with the core's and hand the S3 libraries to every user of the
core. PkgConfigDeps writes ``storewatch.pc``, ``storewatch-s3.pc`` and
``storewatch-redis.pc``, the names ``cmake --install`` gives the pkg-config
files.

There is no option to build the storewatch command-line tool: it is a
compiled program, which a header-library package does not hold, and an
option switching the package type would give the tool's package id every
setting and requirement while the headers need none. Install the tool from
the CMake build (``-DSTOREWATCH_BUILD_TOOLS=ON``, ``cmake --install``) or with
vcpkg's ``storewatch[tools]``.

tests/package/conan_recipe.py runs this recipe in CI through stand-ins for
Conan's classes, and builds test_package/ from CMakeDeps-shaped files.
"""
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load, save
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class StorewatchConan(ConanFile):
    name = "storewatch"
    license = "BSL-1.0"
    description = ("Real-time notifications of file operations on a shared, "
                   "versioned file store, for Asio services")
    topics = ("asio", "coroutines", "file-events", "notifications", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"s3": [True, False], "redis": [True, False]}
    default_options = {"s3": False, "redis": False}
    exports_sources = ("LICENSE", "cmake/version.hpp.in", "include/*")
    no_copy_source = True

    def set_version(self):
        # The CMake project version is the one source of the version.
        cmake = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = re.search(r"project\(storewatch VERSION (\d+\.\d+\.\d+)", cmake).group(1)

    def layout(self):
        basic_layout(self)

    def requirements(self):
        # storewatch's headers include these libraries' headers and call
        # them: its users compile against them and link the compiled ones.
        # The minimum versions are those of storewatch's CMake package
        # (CMakeLists.txt, cmake/storewatch-config.cmake.in).
        self.requires("asio/[>=1.22.1 <2]", transitive_headers=True)
        self.requires("nlohmann_json/[>=3.10 <4]", transitive_headers=True)
        self.requires("zlib/[>=1.2.11 <2]", transitive_headers=True, transitive_libs=True)
        if self.options.s3:
            self.requires("openssl/[>=3 <4]", transitive_headers=True, transitive_libs=True)
            self.requires("pugixml/[>=1.11 <2]", transitive_headers=True, transitive_libs=True)
            self.requires("libcurl/[>=7.80 <9]", transitive_headers=True, transitive_libs=True)
        if self.options.redis:
            # The same minimum as storewatch's CMake package and
            # storewatch-redis.pc. (Conan Center has hiredis 1.x only;
            # storewatch is tested with Debian 12's 0.14.)
            self.requires("hiredis/[>=0.14 <2]", transitive_headers=True, transitive_libs=True)

    def validate(self):
        if self.settings.os != "Linux":
            # inotify, Linux's errno values and /proc.
            raise ConanInvalidConfiguration(f"{self.ref} uses Linux APIs (inotify): Linux only")
        check_min_cppstd(self, 20)

    def package_id(self):
        # The same headers for every setting and option.
        self.info.clear()

    def build(self):
        pass

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        include = os.path.join(self.package_folder, "include")
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), include)
        # What CMake's configure_file makes of cmake/version.hpp.in.
        major, minor, patch = str(self.version).split(".")
        version_hpp = load(self, os.path.join(self.source_folder, "cmake", "version.hpp.in"))
        for name, value in (("PROJECT_VERSION_MAJOR", major), ("PROJECT_VERSION_MINOR", minor),
                            ("PROJECT_VERSION_PATCH", patch), ("PROJECT_VERSION", str(self.version))):
            version_hpp = version_hpp.replace("@%s@" % name, value)
        save(self, os.path.join(include, "storewatch", "version.hpp"), version_hpp)

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "storewatch")
        self.cpp_info.set_property("cmake_target_name", "storewatch::all")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "storewatch::storewatch")
        core.set_property("pkg_config_name", "storewatch")
        core.bindirs = []
        core.libdirs = []
        core.defines = ["ASIO_STANDALONE"]
        if self.settings.compiler == "clang":
            # As the CMake target: Asio 1.22 does not detect coroutines in
            # clang with libstdc++.
            core.defines += ["ASIO_HAS_CO_AWAIT=1", "ASIO_HAS_STD_COROUTINE=1"]
        core.requires = ["asio::asio", "nlohmann_json::nlohmann_json", "zlib::zlib"]
        core.system_libs = ["pthread"]
        if self.options.s3:
            # As the CMake package's storewatch::s3: store/open_store.hpp's s3:// part.
            self._component("s3", ["openssl::crypto", "pugixml::pugixml", "libcurl::curl"], ["STOREWATCH_WITH_S3"])
        if self.options.redis:
            # Conan Center's hiredis: its library is the component hiredislib
            # (the target hiredis::hiredis).
            self._component("redis", ["hiredis::hiredislib"])

    def _component(self, name, requires, defines=()):
        """An optional component: storewatch::<name> and storewatch-<name>.pc,
        the core's headers with more libraries to link, as in the CMake package."""
        component = self.cpp_info.components[name]
        component.set_property("cmake_target_name", "storewatch::" + name)
        component.set_property("pkg_config_name", "storewatch-" + name)
        component.bindirs = []
        component.libdirs = []
        component.includedirs = []  # the core's
        component.defines = list(defines)
        component.requires = ["core"] + requires
