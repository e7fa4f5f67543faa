"""Runs conanfile.py without Conan (which cannot reach its registry here).

Conan's classes are replaced by stand-ins that do what Conan would do with
the recipe's calls: the CMake configure, build and install the recipe asks
for are the ones that run. Then checks what a Conan user would get.

    python3 conan_recipe.py SOURCE WORK [tools] [s3]

The package lands in WORK/package.
"""
import fnmatch
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types

source, work = sys.argv[1], sys.argv[2]
chosen = set(sys.argv[3:])


def fail(message):
    sys.exit("conan_recipe.py: " + message)


class Value:
    """An option or setting value, as Conan gives it: compares and tests
    as its text."""

    def __init__(self, value):
        self.value = value

    def __bool__(self):
        return self.value in (True, "True")

    def __eq__(self, other):
        return str(self.value) == str(other)

    def __str__(self):
        return str(self.value)


class Values:
    def __init__(self, values):
        self.__dict__.update({k: Value(v) for k, v in values.items()})


class Info:
    def __init__(self, options):
        self.options = options
        self.cleared = False

    def clear(self):
        self.cleared = True


class CppInfo:
    def __init__(self):
        self.properties = {}
        self.libdirs = ["lib"]
        self.bindirs = ["bin"]
        self.defines = []
        self.requires = []
        self.system_libs = []

    def set_property(self, name, value):
        self.properties[name] = value


class ConanFile:
    def __init__(self):
        self.recipe_folder = source
        self.source_folder = os.path.join(work, "source")
        self.build_folder = os.path.join(work, "build")
        self.package_folder = os.path.join(work, "package")
        self.generators_folder = os.path.join(self.build_folder, "generators")
        self.options = Values({name: name in chosen for name in self.default_options})
        self.settings = Values({"os": "Linux", "arch": "x86_64", "compiler": "gcc", "build_type": "Release"})
        self.info = Info(self.options)
        self.cpp_info = CppInfo()
        self.required = []

    def requires(self, reference):
        self.required.append(reference)


toolchains = []


class CMakeToolchain:
    def __init__(self, conanfile):
        self.cache_variables = {}
        toolchains.append(self)

    def generate(self):
        pass


class CMakeDeps:
    def __init__(self, conanfile):
        pass

    def generate(self):
        pass


def run(*command):
    if subprocess.call(command) != 0:
        fail("'" + " ".join(command) + "' failed")


class CMake:
    def __init__(self, conanfile):
        self.conanfile = conanfile

    def configure(self):
        (toolchain,) = toolchains
        flags = ["-D%s=%s" % (k, ("ON" if v else "OFF") if isinstance(v, bool) else v)
                 for k, v in toolchain.cache_variables.items()]
        print("recipe configure options:", " ".join(flags), flush=True)
        run("cmake", "-S", self.conanfile.source_folder, "-B", self.conanfile.build_folder, "-G", "Ninja",
            "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_INSTALL_PREFIX=" + self.conanfile.package_folder, *flags)

    def build(self):
        run("cmake", "--build", self.conanfile.build_folder)

    def install(self):
        run("cmake", "--install", self.conanfile.build_folder)


def cmake_layout(conanfile):
    pass


def copy(conanfile, pattern, src, dst):
    os.makedirs(dst, exist_ok=True)
    shutil.copy(os.path.join(src, pattern), dst)


def load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def install_stand_ins():
    modules = {
        "conan": {"ConanFile": ConanFile},
        "conan.tools": {},
        "conan.tools.cmake": {"CMake": CMake, "CMakeDeps": CMakeDeps, "CMakeToolchain": CMakeToolchain,
                              "cmake_layout": cmake_layout},
        "conan.tools.files": {"copy": copy, "load": load},
    }
    for name, members in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(members)
        sys.modules[name] = module


install_stand_ins()
shutil.rmtree(work, ignore_errors=True)
spec = importlib.util.spec_from_file_location("conanfile", os.path.join(source, "conanfile.py"))
recipe_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe_module)
recipe = recipe_module.StorewatchConan()

# Conan builds from the files exports_sources names, not the whole tree: a
# file the build needs but the recipe does not export fails here.
for folder, subfolders, files in os.walk(source):
    subfolders[:] = [d for d in subfolders if d not in (".git", "build")]
    for name in files:
        relative = os.path.relpath(os.path.join(folder, name), source)
        if any(fnmatch.fnmatch(relative, pattern) for pattern in recipe.exports_sources):
            os.makedirs(os.path.dirname(os.path.join(recipe.source_folder, relative)), exist_ok=True)
            shutil.copy(os.path.join(source, relative), os.path.join(recipe.source_folder, relative))

# Conan's order for `conan create`.
recipe.set_version()
recipe.layout()
recipe.requirements()
recipe.package_id()
recipe.generate()
recipe.build()
recipe.package()
recipe.package_info()

with open(os.path.join(source, "ports/storewatch/vcpkg.json"), encoding="utf-8") as f:
    port_version = json.load(f)["version-semver"]
if recipe.version != port_version:
    fail("the recipe's version %s differs from the vcpkg port's %s" % (recipe.version, port_version))
properties = recipe.cpp_info.properties
if properties.get("cmake_file_name") != "storewatch" or properties.get("cmake_target_name") != "storewatch::storewatch":
    fail("cmake_file_name/cmake_target_name do not match the CMake package: %s" % properties)
header_only = not chosen & {"tools", "s3"}
if recipe.info.cleared != header_only:
    fail("package_id: header-only is %s but info.clear() was %scalled" % (header_only, "" if recipe.info.cleared else "not "))
for name in ("asio", "nlohmann_json", "zlib"):
    if not any(r.startswith(name + "/") for r in recipe.required):
        fail("the recipe does not require " + name)
expected = ["include/storewatch/storewatch.hpp", "include/storewatch/version.hpp", "licenses/LICENSE",
            "share/storewatch/storewatch-config.cmake"]
if "tools" in chosen:
    expected.append("bin/storewatch")
for path in expected:
    if not os.path.exists(os.path.join(recipe.package_folder, path)):
        fail("the package lacks " + path)
print("conan recipe: storewatch/%s packaged to %s with options %s" % (recipe.version, recipe.package_folder,
                                                                       sorted(chosen) or "none"))
