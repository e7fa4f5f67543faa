// Fuzz target: the storewatch tool's argument parser (storewatch::cli::parse
// and split_list in tools/cli.hpp).
//
// The input is an argument vector: its bytes split at NUL. The first
// argument picks the command (by name, or by its length when it names none)
// and the rest go to cli::parse, as tools/storewatch.cpp does after the
// global options. The command table lives only in tools/storewatch.cpp, so a
// copy of its shape (names, positional counts, options and whether they take
// a value) is below; keep it in step when commands change.
//
// Properties checked (abort on violation):
// - parse throws nothing but cli::usage_error;
// - what it accepts has between min and max positionals, only options the
//   command has, and flags with an empty value;
// - canonical round trip: the options written as "--name=value" (flags as
//   "--name"), then "--", then the positionals, parse to the same result;
// - list options (--with, --to, --names, --include, --exclude) split into
//   non-empty items that join back to the value, or throw usage_error;
// - time options (--since, --until) go through parse_time without throwing.
#include "cli.hpp"
#include "time_text.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <vector>

namespace {

using storewatch::cli::command_spec;
using storewatch::cli::option_spec;
using storewatch::cli::parsed_args;

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_cli: property violated at line %u: %s\n", static_cast<unsigned>(where.line()), what);
  std::abort();
}

std::vector<option_spec> with_selection(std::vector<option_spec> options) {
  options.push_back({"recursive", false, ""});
  options.push_back({"since", true, ""});
  options.push_back({"until", true, ""});
  return options;
}

const std::vector<command_spec>& commands() {
  static const std::vector<command_spec> table{
      {"create", "PATH [FILE|-]", 1, 2, {}, ""},
      {"share", "PREFIX", 1, 1, with_selection({{"with", true, ""}}), ""},
      {"unshare", "PREFIX", 1, 1, with_selection({{"with", true, ""}}), ""},
      {"delete", "PREFIX", 1, 1, with_selection({}), ""},
      {"publish", "NAME [DATA]", 1, 2, {{"to", true, ""}}, ""},
      {"ls", "[PREFIX]", 0, 1, {{"recursive", false, ""}}, ""},
      {"cat", "VERSIONED_PATH", 1, 1, {}, ""},
      {"tail", "", 0, 0,
       {{"from-start", false, ""}, {"checkpoint", true, ""}, {"names", true, ""}, {"prefix", true, ""},
        {"format", true, ""}, {"count", true, ""}, {"timeout", true, ""}, {"interval", true, ""}},
       ""},
      {"stats", "", 0, 0, {}, ""},
      {"watch", "DIR", 1, 1,
       {{"state", true, ""}, {"include", true, ""}, {"exclude", true, ""}, {"no-hidden", false, ""},
        {"no-symlinks", false, ""}, {"flat", false, ""}, {"existing", false, ""}, {"settle", true, ""},
        {"names", true, ""}, {"prefix", true, ""}, {"format", true, ""}, {"count", true, ""},
        {"timeout", true, ""}, {"interval", true, ""}},
       ""},
  };
  return table;
}

std::optional<parsed_args> documented(const command_spec& spec, const std::vector<std::string>& args) {
  try {
    return storewatch::cli::parse(spec, args);
  } catch (const storewatch::cli::usage_error& error) {
    require(std::string_view(error.what()).size() > 0, "a usage error without a message");
    return std::nullopt;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "fuzz_cli: parse threw %s\n", other.what());
    require(false, "parse threw something other than usage_error");
  }
  return std::nullopt;
}

void check_list(const std::string& value, std::string_view option) {
  std::vector<std::string> items;
  try {
    items = storewatch::cli::split_list(value, option);
  } catch (const storewatch::cli::usage_error&) {
    return;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "fuzz_cli: split_list threw %s\n", other.what());
    require(false, "split_list threw something other than usage_error");
  }
  std::string joined;
  for (const auto& item : items) {
    require(!item.empty(), "split_list gave an empty item");
    if (!joined.empty()) joined += ',';
    joined += item;
  }
  require(!items.empty() && joined == value, "split_list's items do not join back to the value");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (std::size_t start = 0; start <= bytes.size();) {
    const auto nul = bytes.find('\0', start);
    const auto end = nul == std::string_view::npos ? bytes.size() : nul;
    args.emplace_back(bytes.substr(start, end - start));
    start = end + 1;
  }
  const command_spec* spec = nullptr;
  for (const auto& candidate : commands()) {
    if (candidate.name == args.front()) spec = &candidate;
  }
  if (!spec) spec = &commands()[args.front().size() % commands().size()];
  args.erase(args.begin());

  const auto parsed = documented(*spec, args);
  if (!parsed) return 0;
  require(parsed->positionals.size() >= spec->min_positionals && parsed->positionals.size() <= spec->max_positionals,
          "accepted a wrong number of positionals");
  std::vector<std::string> canonical;
  for (const auto& [name, value] : parsed->options) {
    const option_spec* option = nullptr;
    for (const auto& candidate : spec->options) {
      if (candidate.name == name) option = &candidate;
    }
    require(option != nullptr, "accepted an option the command does not have");
    require(option->takes_value || value.empty(), "a flag has a value");
    canonical.push_back(option->takes_value ? "--" + name + "=" + value : "--" + name);
    if (name == "with" || name == "to" || name == "names" || name == "include" || name == "exclude") {
      check_list(value, name);
    }
    if (name == "since" || name == "until") (void)storewatch::cli::parse_time(value);
  }
  canonical.emplace_back("--");
  canonical.insert(canonical.end(), parsed->positionals.begin(), parsed->positionals.end());
  const auto again = documented(*spec, canonical);
  require(again.has_value(), "the canonical form of accepted arguments is rejected");
  require(again->positionals == parsed->positionals && again->options == parsed->options,
          "the canonical form of accepted arguments parses differently");
  return 0;
}
