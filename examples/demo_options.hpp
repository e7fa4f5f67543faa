// Command-line options of the two-user demo programs: "--name value" pairs
// checked against a table, so each program states what it accepts.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace demo {

struct option {
  const char* name;     // without the leading "--"
  std::string value;    // the default, replaced by the command line
  const char* meaning;  // for --help
};

/// Fills `options` from argv; prints usage and exits 2 on anything unknown.
inline void parse(int argc, char** argv, std::map<std::string, option>& options, const char* summary) {
  const auto usage = [&](FILE* out) {
    std::fprintf(out, "%s\n\nusage: %s", summary, argv[0]);
    for (const auto& [key, o] : options) std::fprintf(out, " [--%s VALUE]", o.name);
    std::fprintf(out, "\n");
    for (const auto& [key, o] : options) {
      std::fprintf(out, "  --%-12s %s (default: %s)\n", o.name, o.meaning, o.value.c_str());
    }
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    }
    const auto found = arg.starts_with("--") ? options.find(std::string(arg.substr(2))) : options.end();
    if (found == options.end() || i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s '%s'\n", argv[0], found == options.end() ? "unknown option" : "missing value for",
                   argv[i]);
      usage(stderr);
      std::exit(2);
    }
    found->second.value = argv[++i];
  }
}

}  // namespace demo
