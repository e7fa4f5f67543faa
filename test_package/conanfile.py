"""Conan's check of the storewatch package: builds and runs a program using
storewatch::storewatch and, when the package has the s3 option, one using
storewatch::s3, and with the redis option one using storewatch::redis (the
same program as the s3 one when both are on), from the files CMakeDeps
generates."""
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout


class StorewatchTestPackageConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "VirtualRunEnv"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        toolchain = CMakeToolchain(self)
        options = self.dependencies["storewatch"].options
        toolchain.cache_variables["STOREWATCH_TEST_S3"] = bool(options.s3)
        toolchain.cache_variables["STOREWATCH_TEST_REDIS"] = bool(options.redis)
        toolchain.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if not can_run(self):
            return
        programs = ["test_package"]
        if self.dependencies["storewatch"].options.s3:
            programs.append("test_package_s3")
        if self.dependencies["storewatch"].options.redis and not self.dependencies["storewatch"].options.s3:
            programs.append("test_package_redis")  # with s3 too, test_package_s3 uses both
        for program in programs:
            self.run(os.path.join(self.cpp.build.bindirs[0], program), env="conanrun")
