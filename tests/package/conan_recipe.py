"""Runs conanfile.py without Conan (which cannot reach its registry here).

Conan's classes are replaced by stand-ins that do what Conan would do with
the recipe's calls: the CMake configure, build and install the recipe asks
for are the ones that run. Then checks what a Conan user would get.

    python3 conan_recipe.py SOURCE WORK [tools] [s3]

The package lands in WORK/package.

Requirements are resolved as Conan would resolve them from its registry,
but from this machine's packages: storewatch's CMake build finds them, and
each requirement's version range must hold the version pkg-config reports
for it here, and start at the version storewatch's CMake package asks for.
Not modelled: CMakeDeps (the package's own CMake config is what consumers
use here), and Conan Center's recipes for the requirements (their component
names are taken as they are today: openssl::crypto, libcurl::curl).
"""
import fnmatch
import importlib.util
import json
import os
import re
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


class IdPart:
    """The settings or the requirements in self.info: only clear() is modelled."""

    def __init__(self):
        self.cleared = False

    def clear(self):
        self.cleared = True


class Info:
    def __init__(self, options):
        self.options = options
        self.options_cleared = False
        self.settings = IdPart()
        self.requires = IdPart()

    def clear(self):
        self.options_cleared = True
        self.settings.clear()
        self.requires.clear()

    def what_counts(self):
        """What the package id is computed from."""
        return {"settings": not self.settings.cleared, "options": not self.options_cleared,
                "requirements": not self.requires.cleared}


class CppInfo:
    def __init__(self, root=True):
        self.properties = {}
        self.includedirs = ["include"]
        self.libdirs = ["lib"]
        self.bindirs = ["bin"]
        self.defines = []
        self.requires = []
        self.system_libs = []
        if root:
            self.components = Components()

    def set_property(self, name, value):
        self.properties[name] = value


class Components(dict):
    def __missing__(self, name):
        self[name] = CppInfo(root=False)
        return self[name]


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
        self.required = {}

    def requires(self, reference, **traits):
        self.required[reference] = traits


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
cpp_info = recipe.cpp_info
if cpp_info.properties.get("cmake_file_name") != "storewatch":
    fail("cmake_file_name is not storewatch, the CMake package's name: %s" % cpp_info.properties)

# package_id: the header-only core has one id; with s3 alone the files
# depend on the options only; with the tool, everything counts.
if "tools" in chosen:
    expected_id = {"settings": True, "options": True, "requirements": True}
elif "s3" in chosen:
    expected_id = {"settings": False, "options": True, "requirements": False}
else:
    expected_id = {"settings": False, "options": False, "requirements": False}
if recipe.info.what_counts() != expected_id:
    fail("package_id: expected the id to come from %s, but it comes from %s" % (expected_id, recipe.info.what_counts()))

# Requirements, resolved from this machine's packages. Name in Conan Center:
# (pkg-config name here, the CMake package storewatch's config asks for, the
# target it links, the Conan Center component giving that target).
requirements = {
    "asio": (None, None, "asio::asio", "asio::asio"),
    "nlohmann_json": ("nlohmann_json", "nlohmann_json", "nlohmann_json::nlohmann_json", "nlohmann_json::nlohmann_json"),
    "zlib": ("zlib", "ZLIB", "ZLIB::ZLIB", "zlib::zlib"),
}
s3_requirements = {
    "openssl": ("libcrypto", "OpenSSL", "OpenSSL::Crypto", "openssl::crypto"),
    "pugixml": ("pugixml", "pugixml", "pugixml::pugixml", "pugixml::pugixml"),
    "libcurl": ("libcurl", "CURL", "CURL::libcurl", "libcurl::curl"),
}
if "s3" in chosen:
    requirements.update(s3_requirements)
required = {reference.split("/")[0]: (reference, traits) for reference, traits in recipe.required.items()}
# The tool's own requirements: built into it, passed on to nobody.
tool_requirements = ["cli11", "date"] if "tools" in chosen else []
if sorted(required) != sorted([*requirements, *tool_requirements]):
    fail("the recipe requires %s; expected %s" % (sorted(required), sorted([*requirements, *tool_requirements])))
for name in tool_requirements:
    if required[name][1].get("visible", True):
        fail("%s: only the tool uses it, but it is visible to storewatch's users" % required[name][0])


def version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


config_in = load(None, os.path.join(source, "cmake/storewatch-config.cmake.in"))
cmake_minimums = dict(re.findall(r"find_(?:dependency|package)\((\w+) ([\d.]+)", config_in))
for name, (pc_name, cmake_name, _, _) in requirements.items():
    reference, traits = required[name]
    match = re.fullmatch(r"[\w-]+/\[>=([\d.]+) <([\d.]+)\]", reference)
    if not match:
        fail("%s: expected a range [>=low <high]" % reference)
    low, high = match.groups()
    if not traits.get("transitive_headers"):
        fail("%s: storewatch's headers include it, but its headers are not passed on (transitive_headers)" % reference)
    if name not in ("asio", "nlohmann_json") and not traits.get("transitive_libs"):
        fail("%s: storewatch's users link it, but its libraries are not passed on (transitive_libs)" % reference)
    if cmake_name in cmake_minimums and version_tuple(low) != version_tuple(cmake_minimums[cmake_name]):
        fail("%s starts at %s, but storewatch's CMake package asks for %s %s" % (reference, low, cmake_name,
                                                                                 cmake_minimums[cmake_name]))
    if pc_name:
        here = subprocess.run(["pkg-config", "--modversion", pc_name], capture_output=True, text=True)
        if here.returncode != 0:
            fail("pkg-config knows no %s to resolve %s from" % (pc_name, reference))
        version = here.stdout.strip()
        if not version_tuple(low) <= version_tuple(version) < version_tuple(high):
            fail("%s does not hold this machine's %s %s" % (reference, pc_name, version))
        print("conan recipe: %s resolved to this machine's %s %s" % (reference, pc_name, version))

# package_info against the CMake package's targets.
core_requires = sorted(component for _, _, _, component in requirements.values()
                       if component.split("::")[0] in ("asio", "nlohmann_json", "zlib"))
if "s3" in chosen:
    if cpp_info.properties.get("cmake_target_name") in ("storewatch::storewatch", "storewatch::s3", None):
        fail("with components, the whole package's target must not be a component's: %s" % cpp_info.properties)
    if sorted(cpp_info.components) != ["core", "s3"]:
        fail("expected components core and s3, not %s" % sorted(cpp_info.components))
    core, s3 = cpp_info.components["core"], cpp_info.components["s3"]
    targets = {"core": "storewatch::storewatch", "s3": "storewatch::s3"}
    for name, component in cpp_info.components.items():
        if component.properties.get("cmake_target_name") != targets[name]:
            fail("component %s: cmake_target_name %s, not %s" % (name, component.properties.get("cmake_target_name"),
                                                                  targets[name]))
    # What the installed CMake package says storewatch::s3 links.
    exported = load(None, os.path.join(recipe.package_folder, "share/storewatch/storewatch-s3-targets.cmake"))
    match = re.search(r"set_target_properties\(storewatch::s3 PROPERTIES.*?INTERFACE_LINK_LIBRARIES \"([^\"]*)\"",
                      exported, re.S)
    if not match:
        fail("the installed CMake package has no storewatch::s3 target")
    by_target = {target: component for _, _, target, component in requirements.values()}
    by_target["storewatch::storewatch"] = "core"
    expected_s3 = sorted(by_target[target] for target in match.group(1).split(";"))
    if sorted(s3.requires) != expected_s3:
        fail("component s3 requires %s; the CMake package's storewatch::s3 links %s, which is %s"
             % (sorted(s3.requires), match.group(1), expected_s3))
else:
    if cpp_info.components:
        fail("without s3, expected no components, as the CMake package has one target")
    if cpp_info.properties.get("cmake_target_name") != "storewatch::storewatch":
        fail("cmake_target_name is not storewatch::storewatch: %s" % cpp_info.properties)
    core = cpp_info
# The defines of CMakeLists.txt's storewatch target, for g++ and for clang.
cmake_lists = load(None, os.path.join(source, "CMakeLists.txt"))
definitions = re.search(r"target_compile_definitions\(storewatch INTERFACE\n(.*?)\)\n", cmake_lists, re.S)
if not definitions:
    fail("no target_compile_definitions(storewatch INTERFACE ...) in CMakeLists.txt")
definitions = re.sub(r"#[^\n]*", "", definitions.group(1))
clang_pattern = r"\$<\$<CXX_COMPILER_ID:Clang>:([^>]*)>"
always = re.sub(clang_pattern, "", definitions).split()
cmake_defines = {"gcc": always, "clang": always + " ".join(re.findall(clang_pattern, definitions)).split()}


if sorted(core.requires) != core_requires or core.defines != cmake_defines["gcc"] or core.libdirs:
    fail("the core's information differs from the CMake package's storewatch::storewatch: requires %s, defines %s"
         " (the CMake target's: %s)" % (core.requires, core.defines, cmake_defines["gcc"]))
# package_info again for a clang consumer: the CMake target's clang defines.
recipe.settings.compiler = Value("clang")
recipe.cpp_info = cpp_info = CppInfo()
recipe.package_info()
clang_core = cpp_info.components["core"] if "s3" in chosen else cpp_info
if clang_core.defines != cmake_defines["clang"]:
    fail("for clang the core defines %s; the CMake target defines %s" % (clang_core.defines, cmake_defines["clang"]))
# Every requirement is used by the package or a component, as Conan checks.
used = {r.split("::")[0] for info in [cpp_info, *cpp_info.components.values()] for r in info.requires if "::" in r}
if used != set(requirements):
    fail("requirements not used by any component: %s" % sorted(set(requirements) - used))

expected = ["include/storewatch/storewatch.hpp", "include/storewatch/version.hpp", "licenses/LICENSE",
            "share/storewatch/storewatch-config.cmake"]
if "tools" in chosen:
    expected.append("bin/storewatch")
if "s3" in chosen:
    expected += ["include/storewatch/store/s3_store.hpp", "include/storewatch/store/s3_journal.hpp"]
elif os.path.exists(os.path.join(recipe.package_folder, "include/storewatch/s3")):
    fail("the package has the S3 headers without the s3 option")
for path in expected:
    if not os.path.exists(os.path.join(recipe.package_folder, path)):
        fail("the package lacks " + path)
print("conan recipe: storewatch/%s packaged to %s with options %s" % (recipe.version, recipe.package_folder,
                                                                       sorted(chosen) or "none"))
