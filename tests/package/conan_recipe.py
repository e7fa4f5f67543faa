"""Runs conanfile.py and test_package/ without Conan (which cannot be
installed here), and checks that what a Conan user gets is what storewatch's
CMake package gives.

    python3 conan_recipe.py SOURCE WORK INSTALLED CXX... [--s3] [--redis]

SOURCE is storewatch's tree, WORK a scratch folder, INSTALLED a `cmake
--install` of a build with S3 (and, for --redis, the Redis hints: what the
recipe is compared with), CXX the
compilers to check (g++ and clang++: the recipe's defines depend on the
compiler setting).

Conan's classes are replaced by stand-ins that do what Conan does with the
recipe's calls, in `conan create`'s order: export the exports_sources,
validate, requirements, package_id, build, package, package_info. Then, for
each compiler, what CMakeDeps would generate from package_info (a
storewatch-config.cmake with IMPORTED INTERFACE targets per component, and
one config per requirement from the package_info of its Conan Center recipe,
resolved to this machine's packages) goes into a generators folder, the only
place a consumer looks for packages: the usage probe is configured against it
and against INSTALLED, and the compile definitions, include directories and
link libraries of storewatch::storewatch, storewatch::s3 and
storewatch::redis must agree.
test_package/ is built and run against it too.

Not modelled: Conan's graph resolution (a requirement's version range must
hold this machine's version, from pkg-config) and the parts of CMakeDeps
beyond the targets' usage requirements (per-configuration files, find-mode
modules, build modules).
"""
import argparse
import fnmatch
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import types

parser = argparse.ArgumentParser()
parser.add_argument("source")
parser.add_argument("work")
parser.add_argument("installed")
parser.add_argument("compilers", nargs="+")
parser.add_argument("--s3", action="store_true")
parser.add_argument("--redis", action="store_true")
arguments = parser.parse_args()
source, work = os.path.abspath(arguments.source), os.path.abspath(arguments.work)


def fail(message):
    sys.exit("conan_recipe.py: " + message)


def run(*command, **options):
    print("conan recipe: running " + " ".join(command), flush=True)
    if subprocess.call(command, **options) != 0:
        fail("'" + " ".join(command) + "' failed")


# ---------------------------------------------------------------- Conan's API


class ConanInvalidConfiguration(Exception):
    pass


class Value:
    """An option or setting value as Conan gives it: compares and tests as
    its text, and has the sub-settings (compiler.cppstd) as attributes."""

    def __init__(self, value, **subsettings):
        self.value = value
        self.__dict__.update({k: Value(v) for k, v in subsettings.items()})

    def __bool__(self):
        return self.value in (True, "True")

    def __eq__(self, other):
        return str(self.value) == str(other)

    def __str__(self):
        return str(self.value)


class Values:
    def __init__(self, values):
        self.__dict__.update({k: v if isinstance(v, Value) else Value(v) for k, v in values.items()})


def settings_for(compiler, os_name="Linux", cppstd="20"):
    version = subprocess.run([compiler, "-dumpversion"], capture_output=True, text=True).stdout.strip()
    name = "clang" if "clang" in os.path.basename(compiler) else "gcc"
    return Values({"os": os_name, "arch": "x86_64", "build_type": "Release",
                   "compiler": Value(name, version=version, cppstd=cppstd, libcxx="libstdc++11")})


class Info:
    """self.info: what the package id is computed from."""

    def __init__(self):
        self.cleared = False

    def clear(self):
        self.cleared = True


class CppInfo:
    def __init__(self, root=True):
        self.properties = {}
        self.includedirs = ["include"]
        self.libdirs = ["lib"]
        self.bindirs = ["bin"]
        self.libs = []
        self.defines = []
        self.requires = []
        self.system_libs = []
        self.components = Components() if root else {}

    def set_property(self, name, value):
        self.properties[name] = value


class Components(dict):
    def __missing__(self, name):
        self[name] = CppInfo(root=False)
        return self[name]


class Folders:
    def __init__(self, build):
        self.bindirs = [build]


class ConanFile:
    """Folders as `conan create` has them with no_copy_source: the exported
    sources are read in place; the build folder stays empty."""

    options = {}
    default_options = {}

    def __init__(self, folder, settings, options):
        self.recipe_folder = self.source_folder = folder
        self.build_folder = folder + "-build"
        self.generators_folder = os.path.join(self.build_folder, "generators")
        self.package_folder = os.path.join(work, "package")
        self.settings = settings
        self.options = Values(options)
        self.info = Info()
        self.cpp_info = CppInfo()
        self.cpp = types.SimpleNamespace(build=Folders(self.build_folder))
        self.required = {}
        self.ref = "%s/%s" % (getattr(self, "name", "test_package"), getattr(self, "version", ""))

    def requires(self, reference, **traits):
        self.required[reference] = traits

    def run(self, command, env=None):
        run(command)


def check_min_cppstd(conanfile, minimum):
    cppstd = conanfile.settings.compiler.cppstd.value
    if cppstd is None:  # Conan 2 does not guess the compiler's default
        raise ConanInvalidConfiguration("compiler.cppstd is not defined")
    if int(cppstd.replace("gnu", "")) < minimum:
        raise ConanInvalidConfiguration("needs at least C++%d, not %s" % (minimum, cppstd))


def copy(conanfile, pattern, src, dst):
    """Conan's copy: files matching pattern under src, at the same relative paths under dst."""
    for path in glob.glob(os.path.join(src, "**", pattern), recursive=True):
        target = os.path.join(dst, os.path.relpath(path, src))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(path, target)


def load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def save(conanfile, path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)


toolchains = []


class CMakeToolchain:
    def __init__(self, conanfile):
        self.conanfile = conanfile
        self.cache_variables = {}
        toolchains.append(self)

    def generate(self):
        pass


class CMake:
    """What CMakeToolchain's conan_toolchain.cmake and CMake.configure give:
    the generators folder as the one prefix, the compiler and C++ standard of
    the settings, the toolchain's cache variables."""

    def __init__(self, conanfile):
        self.conanfile = conanfile

    def configure(self):
        conanfile = self.conanfile
        (toolchain,) = [t for t in toolchains if t.conanfile is conanfile]
        flags = ["-D%s=%s" % (k, ("ON" if v else "OFF") if isinstance(v, bool) else v)
                 for k, v in toolchain.cache_variables.items()]
        run("cmake", "-S", conanfile.source_folder, "-B", conanfile.build_folder, "-G", "Ninja",
            *consumer_flags(conanfile.compiler, conanfile.generators_folder), *flags)

    def build(self):
        run("cmake", "--build", self.conanfile.build_folder)


def consumer_flags(compiler, generators):
    # Release, as `conan create` builds, but without optimizing: this checks
    # the package's targets, not the code (-O3 took most of the test's time).
    return ["-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_FLAGS_RELEASE=-DNDEBUG", "-DCMAKE_CXX_COMPILER=" + compiler,
            "-DCMAKE_CXX_STANDARD=20", "-DCMAKE_PREFIX_PATH=" + generators, "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"]


def layout(conanfile):
    pass


def install_stand_ins():
    modules = {
        "conan": {"ConanFile": ConanFile},
        "conan.errors": {"ConanInvalidConfiguration": ConanInvalidConfiguration},
        "conan.tools": {},
        "conan.tools.build": {"check_min_cppstd": check_min_cppstd, "can_run": lambda conanfile: True},
        "conan.tools.cmake": {"CMake": CMake, "CMakeToolchain": CMakeToolchain, "cmake_layout": layout},
        "conan.tools.files": {"copy": copy, "load": load, "save": save},
        "conan.tools.layout": {"basic_layout": layout},
    }
    for name, members in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(members)
        sys.modules[name] = module


def load_recipe(path, class_name):
    spec = importlib.util.spec_from_file_location(os.path.basename(os.path.dirname(path)), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, class_name)


# ------------------------------------------------------------- the recipe

install_stand_ins()
shutil.rmtree(work, ignore_errors=True)
Recipe = load_recipe(os.path.join(source, "conanfile.py"), "StorewatchConan")
options = {"s3": arguments.s3, "redis": arguments.redis}
if sorted(Recipe.options) != ["redis", "s3"]:
    fail("expected the options s3 and redis, not %s" % sorted(Recipe.options))
if any(Recipe.default_options.get(name) is not False for name in Recipe.options):
    fail("the options' defaults: %s; each is off unless asked for" % Recipe.default_options)
if Recipe.package_type != "header-library" or not Recipe.no_copy_source:
    fail("a header-only package: package_type header-library and no_copy_source")

# Conan exports only the files exports_sources names: a file package()
# needs but the recipe does not export fails here.
exported = os.path.join(work, "export_source")
for folder, subfolders, files in os.walk(source):
    subfolders[:] = [d for d in subfolders if d not in (".git", "build")]
    for name in files:
        relative = os.path.relpath(os.path.join(folder, name), source)
        if any(fnmatch.fnmatch(relative, pattern) for pattern in Recipe.exports_sources):
            os.makedirs(os.path.dirname(os.path.join(exported, relative)), exist_ok=True)
            shutil.copy(os.path.join(source, relative), os.path.join(exported, relative))

gcc = next((c for c in arguments.compilers if "clang" not in os.path.basename(c)), arguments.compilers[0])


def make_recipe(settings):
    recipe = Recipe(exported, settings, options)
    recipe.recipe_folder = source  # set_version runs at export, on the recipe's folder
    recipe.set_version()
    recipe.ref = "storewatch/" + recipe.version
    recipe.layout()
    recipe.requirements()
    return recipe


# validate(): Linux and C++20, whatever the compiler.
for settings, valid in ((settings_for(gcc), True), (settings_for(gcc, cppstd="gnu20"), True),
                        (settings_for(gcc, os_name="Windows"), False), (settings_for(gcc, os_name="Macos"), False),
                        (settings_for(gcc, cppstd="17"), False), (settings_for(gcc, cppstd=None), False)):
    try:
        make_recipe(settings).validate()
        accepted = True
    except ConanInvalidConfiguration as refusal:
        print("conan recipe: validate() refuses os=%s cppstd=%s: %s" % (settings.os, settings.compiler.cppstd, refusal))
        accepted = False
    if accepted != valid:
        fail("validate() %s os=%s compiler.cppstd=%s" % ("accepts" if accepted else "refuses", settings.os,
                                                        settings.compiler.cppstd))

recipe = make_recipe(settings_for(gcc))
recipe.package_id()
if not recipe.info.cleared:
    fail("package_id: the headers are the same for every setting and option: self.info.clear()")
os.makedirs(recipe.build_folder)
recipe.build()
if os.listdir(recipe.build_folder):
    fail("build() left files in the build folder; a header-only package builds nothing")
recipe.package()

# The package: the headers `cmake --install` installs (those of a build with
# S3 and Redis: the package has their headers whatever the options), byte
# for byte,
# the license once, and nothing else: no upstream CMake config or
# pkg-config file (CMakeDeps and PkgConfigDeps write the consumer's).
installed = os.path.abspath(arguments.installed)


def tree(root):
    return {os.path.relpath(os.path.join(folder, name), root)
            for folder, _, files in os.walk(root) for name in files}


packaged = tree(recipe.package_folder)
expected = {"licenses/LICENSE"} | {"include/" + path for path in tree(os.path.join(installed, "include"))}
if not os.path.exists(os.path.join(installed, "include/storewatch/redis/hints.hpp")):
    # An install without the Redis hints (no hiredis where it was built):
    # the package has their headers all the same.
    expected |= {"include/storewatch/redis/" + path
                 for path in tree(os.path.join(source, "include/storewatch/redis"))}
if packaged != expected:
    fail("the package differs from the CMake install's headers and the license: extra %s, missing %s"
         % (sorted(packaged - expected), sorted(expected - packaged)))
for path in sorted(expected):
    ours = os.path.join(recipe.package_folder, path)
    theirs = os.path.join(installed, path) if path.startswith("include/") else os.path.join(source, "LICENSE")
    if load(None, ours) != load(None, theirs):
        fail("%s differs from the CMake install's" % path)

with open(os.path.join(source, "ports/storewatch/vcpkg.json"), encoding="utf-8") as f:
    port_version = json.load(f)["version-semver"]
if recipe.version != port_version:
    fail("the recipe's version %s differs from the vcpkg port's %s" % (recipe.version, port_version))

# ------------------------------------------------------- the requirements

# Conan Center's recipes for storewatch's requirements, as CMakeDeps sees
# them (their package_info on Linux with default options), and the
# pkg-config name of this machine's package that stands in for each.
# (name: pkg-config name, cmake_file_name, root target or None, library,
#  system_libs, defines, components {name: (target or None, library,
#  system_libs, requires)}, requires)
conan_center = {
    "asio": (None, None, None, None, ["pthread"], ["ASIO_STANDALONE"], {}, []),
    "nlohmann_json": ("nlohmann_json", None, "nlohmann_json::nlohmann_json", None, [], [], {}, []),
    "zlib": ("zlib", "ZLIB", "ZLIB::ZLIB", "z", [], [], {}, []),
    "openssl": ("libcrypto", "OpenSSL", None, None, [], [],
                {"crypto": ("OpenSSL::Crypto", "crypto", ["dl", "rt", "pthread"], []),
                 "ssl": ("OpenSSL::SSL", "ssl", ["dl", "pthread"], ["crypto"])}, []),
    "pugixml": ("pugixml", None, "pugixml::pugixml", "pugixml", ["m"], [], {}, []),
    "libcurl": ("libcurl", "CURL", "CURL::libcurl", None, [], [],
                {"curl": (None, "curl", ["rt", "pthread"], ["openssl::openssl", "zlib::zlib"])}, []),
    # Without with_ssl, one component whose target is the package's name.
    "hiredis": ("hiredis", "hiredis", None, None, [], [],
                {"hiredislib": ("hiredis::hiredis", "hiredis", [], [])}, []),
}


def pkg_config(name, *query):
    result = subprocess.run(["pkg-config", *query, name], capture_output=True, text=True,
                            env=dict(os.environ, PKG_CONFIG_ALLOW_SYSTEM_CFLAGS="1"))
    if result.returncode != 0:
        fail("pkg-config knows no %s" % name)
    return result.stdout.strip()


def system_package(name):
    """A Conan Center package's cpp_info, its folders this machine's, and its version."""
    pc_name, cmake_file_name, target, library, system_libs, defines, components, requires = conan_center[name]
    if pc_name:
        include = (pkg_config(pc_name, "--variable=includedir")
                   or pkg_config(pc_name, "--cflags-only-I").split()[0][len("-I"):])
        lib = pkg_config(pc_name, "--variable=libdir")
        version = pkg_config(pc_name, "--modversion")
        if os.path.basename(include) == name:
            # Debian's hiredis.pc names the headers' own folder; Conan's
            # package has include/hiredis/, included as <hiredis/...>.
            include = os.path.dirname(include)
        for file in ["lib%s.so" % n for n in [library] + [c[1] for c in components.values()] if n]:
            if not os.path.exists(os.path.join(lib, file)):
                # Debian's hiredis.pc says /usr/lib; the library is in the
                # multiarch folder, where the compiler finds it.
                found = subprocess.run([gcc, "-print-file-name=" + file], capture_output=True, text=True).stdout.strip()
                lib = os.path.dirname(found) if os.path.isabs(found) else lib
    else:  # Debian's Asio has no pkg-config file
        include = next((d for d in ("/usr/include", "/usr/local/include") if os.path.exists(d + "/asio.hpp")), None)
        if not include:
            fail("no asio.hpp here")
        number = int(re.search(r"#define ASIO_VERSION (\d+)", load(None, include + "/asio/version.hpp")).group(1))
        lib, version = None, "%d.%d.%d" % (number // 100000, number // 100 % 1000, number % 100)
    info = CppInfo()
    if cmake_file_name:
        info.set_property("cmake_file_name", cmake_file_name)
    if target:
        info.set_property("cmake_target_name", target)

    def fill(part, part_library, part_system_libs, part_requires):
        part.includedirs = [include]
        part.libdirs = [lib] if part_library else []
        part.libs = [part_library] if part_library else []
        part.system_libs = part_system_libs
        part.requires = part_requires

    fill(info, library, system_libs, requires)
    info.defines = defines
    for component, (component_target, component_library, component_system_libs, component_requires) in components.items():
        if component_target:
            info.components[component].set_property("cmake_target_name", component_target)
        fill(info.components[component], component_library, component_system_libs, component_requires)
    return info, version


def version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


requirements = (["asio", "nlohmann_json", "zlib"] + (["openssl", "pugixml", "libcurl"] if arguments.s3 else [])
                + (["hiredis"] if arguments.redis else []))
required = {reference.split("/")[0]: (reference, traits) for reference, traits in recipe.required.items()}
if sorted(required) != sorted(requirements):
    fail("the recipe requires %s; expected %s" % (sorted(required), sorted(requirements)))
config_in = load(None, os.path.join(source, "cmake/storewatch-config.cmake.in"))
cmake_minimums = dict(re.findall(r"find_(?:dependency|package)\((\w+) ([\d.]+)", config_in))
# hiredis is found by cmake/storewatch-hiredis.cmake, without a version; the
# minimum is storewatch-redis.pc's (and the config's message).
cmake_minimums["hiredis"] = re.search(r"hiredis >= ([\d.]+)",
                                      load(None, os.path.join(source, "cmake/storewatch-redis.pc.in"))).group(1)
dependencies = {}
for name in requirements:
    reference, traits = required[name]
    match = re.fullmatch(r"[\w-]+/\[>=([\d.]+) <([\d.]+)\]", reference)
    if not match:
        fail("%s: expected a range [>=low <high]" % reference)
    low, high = match.groups()
    if not traits.get("transitive_headers"):
        fail("%s: storewatch's headers include it, but its headers are not passed on (transitive_headers)" % reference)
    if name not in ("asio", "nlohmann_json") and not traits.get("transitive_libs"):
        fail("%s: storewatch's users link it, but its libraries are not passed on (transitive_libs)" % reference)
    cmake_name = conan_center[name][1] or name
    if cmake_name in cmake_minimums and version_tuple(low) != version_tuple(cmake_minimums[cmake_name]):
        fail("%s starts at %s, but storewatch's CMake package asks for %s %s" % (reference, low, cmake_name,
                                                                                 cmake_minimums[cmake_name]))
    dependencies[name] = system_package(name)
    version = dependencies[name][1]
    if not version_tuple(low) <= version_tuple(version) < version_tuple(high):
        fail("%s does not hold this machine's %s %s" % (reference, name, version))
    print("conan recipe: %s resolved to this machine's %s %s" % (reference, name, version))

# The libraries the requirements' own requirements bring (as files).
via_requirements = set()
for info, _ in dependencies.values():
    for part in [info, *info.components.values()]:
        for requirement in part.requires:
            if "::" in requirement:
                other = dependencies[requirement.split("::")[0]][0]
                for other_part in [other, *other.components.values()]:
                    via_requirements |= {os.path.realpath(os.path.join(d, "lib%s.so" % lib))
                                         for d in other_part.libdirs for lib in other_part.libs}

# What the recipe's components require, against the targets storewatch's
# CMake package links (the Conan Center name of each; Threads is the
# system library pthread).
conan_names = {"storewatch::storewatch": "core", "asio::asio": "asio::asio",
               "nlohmann_json::nlohmann_json": "nlohmann_json::nlohmann_json", "ZLIB::ZLIB": "zlib::zlib",
               "OpenSSL::Crypto": "openssl::crypto", "pugixml::pugixml": "pugixml::pugixml",
               "CURL::libcurl": "libcurl::curl", "Threads::Threads": "pthread",
               "hiredis::hiredis": "hiredis::hiredislib"}


def cmake_requires(exported_file, target):
    text = load(None, os.path.join(installed, "share/storewatch", exported_file))
    match = re.search(r"set_target_properties\(%s PROPERTIES.*?INTERFACE_LINK_LIBRARIES \"([^\"]*)\"" % target,
                      text, re.S)
    if not match:
        fail("the installed CMake package has no %s in %s" % (target, exported_file))
    return sorted(conan_names.get(t, t) for t in match.group(1).split(";"))


cmake_links = {"core": cmake_requires("storewatch-targets.cmake", "storewatch::storewatch"),
               "s3": cmake_requires("storewatch-s3-targets.cmake", "storewatch::s3")}
if arguments.redis:
    cmake_links["redis"] = cmake_requires("storewatch-redis-targets.cmake", "storewatch::redis")

# ------------------------------------------------- CMakeDeps, as a model


def file_name(name, info):
    return info.properties.get("cmake_file_name", name)


def root_target(name, info):
    return info.properties.get("cmake_target_name", "%s::%s" % (name, name))


def component_target(name, info, component):
    namespace = root_target(name, info).split("::")[0]
    return info.components[component].properties.get("cmake_target_name", "%s::%s" % (namespace, component))


def cmakedeps(folder, packages):
    """Writes, for each package (name: (cpp_info, package folder, version)),
    the config file CMakeDeps would: the requirements found with
    find_dependency, an IMPORTED INTERFACE target per component carrying its
    include directories, defines, libraries, system libraries and the
    targets of what it requires, and the package's target linking them all."""
    os.makedirs(folder, exist_ok=True)
    for name, (info, root, version) in packages.items():
        def target_of(requirement, info=info, name=name):
            if "::" not in requirement:
                return component_target(name, info, requirement)
            other, component = requirement.split("::")
            other_info = packages[other][0]
            if component == other or not other_info.components:
                return root_target(other, other_info)
            return component_target(other, other_info, component)

        def absolute(path, root=root):
            return path if os.path.isabs(path) else os.path.join(root, path)

        parts = {component_target(name, info, c): c_info for c, c_info in info.components.items()}
        if not parts:
            parts = {root_target(name, info): info}
        used = sorted({r.split("::")[0] for p in parts.values() for r in p.requires if "::" in r} - {name})
        fn = file_name(name, info)
        lines = ["# %s's config, as Conan's CMakeDeps writes it from the package_info of its recipe." % name,
                 "include(CMakeFindDependencyMacro)"]
        lines += ["find_dependency(%s REQUIRED NO_MODULE)" % file_name(d, packages[d][0]) for d in used]
        for target, part in parts.items():
            libraries = [os.path.join(absolute(part.libdirs[0]), "lib%s.so" % lib) for lib in part.libs]
            link = libraries + part.system_libs + [target_of(r) for r in part.requires]
            lines += ["if(NOT TARGET %s)" % target, "  add_library(%s INTERFACE IMPORTED)" % target, "endif()"]
            for prop, values in (("INTERFACE_INCLUDE_DIRECTORIES", [absolute(d) for d in part.includedirs]),
                                 ("INTERFACE_COMPILE_DEFINITIONS", part.defines),
                                 ("INTERFACE_LINK_LIBRARIES", link)):
                if values:
                    lines.append('set_property(TARGET %s APPEND PROPERTY %s "$<$<CONFIG:Release>:%s>")'
                                 % (target, prop, ";".join(values)))
        if info.components and root_target(name, info) not in parts:
            # (A component with the package's own target name, as hiredis's
            # hiredislib, is that target: none is made to link them all.)
            target = root_target(name, info)
            lines += ["if(NOT TARGET %s)" % target, "  add_library(%s INTERFACE IMPORTED)" % target, "endif()",
                      "set_property(TARGET %s APPEND PROPERTY INTERFACE_LINK_LIBRARIES %s)" % (target, " ".join(parts))]
        config = "%s-config.cmake" % fn if fn.lower() == fn else "%sConfig.cmake" % fn
        save(None, os.path.join(folder, config), "\n".join(lines) + "\n")
        version_file = "%s-config-version.cmake" % fn if fn.lower() == fn else "%sConfigVersion.cmake" % fn
        save(None, os.path.join(folder, version_file), "\n".join([
            'set(PACKAGE_VERSION "%s")' % version,
            "if(PACKAGE_FIND_VERSION_MAJOR STREQUAL \"%s\" AND NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)"
            % version.split(".")[0],
            "  set(PACKAGE_VERSION_COMPATIBLE TRUE)",
            "endif()"]) + "\n")


# ------------------------------------------ package_info for each compiler

pc_installed = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(installed, "share/pkgconfig/*.pc"))}
targets = {"core": "storewatch::storewatch", "s3": "storewatch::s3", "redis": "storewatch::redis"}
expected_components = ["core"] + (["s3"] if arguments.s3 else []) + (["redis"] if arguments.redis else [])


def check_package_info(info):
    components = sorted(info.components)
    if components != sorted(expected_components):
        fail("package_info: components %s; expected %s" % (components, expected_components))
    for name, component in info.components.items():
        if component.properties.get("cmake_target_name") != targets[name]:
            fail("component %s: cmake_target_name %s, not %s, the CMake package's"
                 % (name, component.properties.get("cmake_target_name"), targets[name]))
        if component.libdirs or component.bindirs:
            fail("component %s: a header-only component has no libdirs or bindirs" % name)
        pc_name = component.properties.get("pkg_config_name", "storewatch-" + name)
        if pc_name not in pc_installed:
            fail("component %s: pkg_config_name %s, which `cmake --install` does not install (it installs %s)"
                 % (name, pc_name, sorted(pc_installed)))
        declared = sorted(component.requires + component.system_libs)
        if declared != cmake_links[name]:
            fail("component %s requires %s; the CMake package's %s links %s"
                 % (name, declared, targets[name], cmake_links[name]))
    if root_target("storewatch", info) in targets.values():
        fail("the package's own target %s would be a component's: it links every component" % root_target("storewatch", info))
    # PkgConfigDeps skips the package's .pc when a component has its name.
    root_pc = info.properties.get("pkg_config_name", "storewatch")
    if root_pc not in pc_installed and root_pc != "none":
        fail("the package's pkg_config_name %s is not one `cmake --install` installs" % root_pc)
    used = {r.split("::")[0] for c in info.components.values() for r in c.requires if "::" in r}
    if used != set(requirements):
        fail("components use %s; the recipe requires %s" % (sorted(used), sorted(requirements)))


def file_api(build):
    """The probe's targets as CMake's file API describes them."""
    reply = os.path.join(build, ".cmake/api/v1/reply")
    (index,) = glob.glob(os.path.join(reply, "index-*.json"))
    with open(index, encoding="utf-8") as f:
        codemodel = json.load(f)["reply"]["codemodel-v2"]["jsonFile"]
    with open(os.path.join(reply, codemodel), encoding="utf-8") as f:
        configuration = json.load(f)["configurations"][0]
    described = {}
    for target in configuration["targets"]:
        with open(os.path.join(reply, target["jsonFile"]), encoding="utf-8") as f:
            described[target["name"]] = json.load(f)
    return described


def usage(build, prefix, root):
    """What each probe program gets: its compile definitions, the include
    directories (the package's folder as <storewatch>), and the libraries it
    links as files. The C library's parts (-lpthread, -ldl, -lrt, -lm: all
    in glibc 2.36's libc) are left out: Conan Center's recipes name them as
    system libraries, CMake's FindThreads finds nothing to add."""
    with open(os.path.join(build, "storewatch_dir.txt"), encoding="utf-8") as f:
        found = f.read()
    if not os.path.realpath(found).startswith(os.path.realpath(prefix)):
        fail("the probe found storewatch in %s, not under %s" % (found, prefix))
    seen = {}
    for name, target in file_api(build).items():
        if not name.startswith("probe_"):
            continue
        (group,) = target["compileGroups"]
        includes = sorted(os.path.realpath(i["path"]).replace(os.path.realpath(root), "<storewatch>")
                          for i in group.get("includes", []))
        libraries = set()
        for fragment in target["link"]["commandFragments"]:
            if fragment["role"] != "libraries":
                continue
            for item in fragment["fragment"].split():
                if item in ("-pthread", "-lpthread", "-ldl", "-lrt", "-lm"):
                    continue
                libraries.add(os.path.realpath(item) if os.path.isabs(item) else item)
        seen[name] = {"defines": sorted({d["define"] for d in group.get("defines", [])}),
                      "includes": includes, "compile flags": [f["fragment"] for f in group.get("compileCommandFragments", [])],
                      "libraries": sorted(libraries)}
    return seen


def probe(compiler, prefix, build, package_root):
    os.makedirs(os.path.join(build, ".cmake/api/v1/query"), exist_ok=True)
    save(None, os.path.join(build, ".cmake/api/v1/query/codemodel-v2"), "")
    run("cmake", "-S", os.path.join(source, "tests/package/usage_probe"), "-B", build, "-G", "Ninja",
        *consumer_flags(compiler, prefix), "-DPROBE_S3=" + ("ON" if arguments.s3 else "OFF"),
        "-DPROBE_REDIS=" + ("ON" if arguments.redis else "OFF"),
        stdout=subprocess.DEVNULL)
    return usage(build, prefix, package_root)


TestPackage = load_recipe(os.path.join(source, "test_package/conanfile.py"), "StorewatchTestPackageConan")
for compiler in arguments.compilers:
    settings = settings_for(compiler)
    tag = "%s-%s" % (settings.compiler, settings.compiler.version)
    recipe.settings = settings
    recipe.cpp_info = CppInfo()
    recipe.package_info()
    check_package_info(recipe.cpp_info)
    packages = {"storewatch": (recipe.cpp_info, recipe.package_folder, recipe.version)}
    packages.update({name: (info, "/", version) for name, (info, version) in dependencies.items()})
    generators = os.path.join(work, "generators-" + tag)
    cmakedeps(generators, packages)
    if glob.glob(os.path.join(recipe.package_folder, "**", "*.cmake"), recursive=True):
        fail("the package holds CMake files; CMakeDeps writes the consumer's")

    # The same consumer against the CMake package and against CMakeDeps' files.
    theirs = probe(compiler, installed, os.path.join(work, "probe-cmake-" + tag), installed)
    ours = probe(compiler, generators, os.path.join(work, "probe-conan-" + tag), recipe.package_folder)
    # Conan Center's libcurl requires openssl::openssl (it is built for a
    # static link); Debian's libcurl.so links its libssl itself. Only such
    # libraries, which a requirement's own requirements bring, may be extra.
    for program, got in ours.items():
        extra = set(got["libraries"]) - set(theirs.get(program, {}).get("libraries", []))
        if extra and extra <= via_requirements:
            print("conan recipe: %s also links %s, through the requirements' own requirements" % (program, sorted(extra)))
            got["libraries"] = sorted(set(got["libraries"]) - extra)
    if ours != theirs:
        for name in sorted(set(ours) | set(theirs)):
            for key in ("defines", "includes", "compile flags", "libraries"):
                a, b = ours.get(name, {}).get(key), theirs.get(name, {}).get(key)
                if a != b:
                    print("%s %s:\n  conan package: %s\n  CMake package: %s" % (name, key, a, b))
        fail("with %s, the Conan package's targets differ from the CMake package's (above)" % compiler)
    print("conan recipe: with %s, %s from CMakeDeps' files agree with the CMake package: %s"
          % (compiler, ", ".join(targets[c] for c in expected_components), json.dumps(ours)))

    # test_package, as `conan create` runs it after the package.
    test = TestPackage(os.path.join(source, "test_package"), settings, {})
    test.compiler = compiler
    test.tested_reference_str = recipe.ref
    test.dependencies = {"storewatch": types.SimpleNamespace(options=recipe.options)}
    test.build_folder = os.path.join(work, "test_package-" + tag)
    test.generators_folder = generators
    test.cpp = types.SimpleNamespace(build=Folders(test.build_folder))
    test.requirements()
    if list(test.required) != [recipe.ref]:
        fail("test_package requires %s, not the tested reference" % list(test.required))
    test.layout()
    test.generate()
    test.build()
    test.test()
    built = sorted(os.path.basename(p) for p in glob.glob(os.path.join(test.build_folder, "test_package*"))
                   if os.access(p, os.X_OK) and os.path.isfile(p))
    if built != ["test_package"] + (["test_package_redis"] if arguments.redis and not arguments.s3 else []) + (
            ["test_package_s3"] if arguments.s3 else []):
        fail("test_package built %s" % built)

print("conan recipe: storewatch/%s packaged to %s with s3=%s redis=%s, checked with %s"
      % (recipe.version, recipe.package_folder, arguments.s3, arguments.redis, ", ".join(arguments.compilers)))
