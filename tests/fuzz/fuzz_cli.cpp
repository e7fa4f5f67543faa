// Fuzz target: the storewatch tool's command line (storewatch::cli::command_line
// in tools/storewatch/cli.hpp, on CLI11, with the tool's own commands from
// tools/storewatch/*_command*.cpp) and split_list.
//
// The input is an argument vector: its bytes split at NUL. The first
// argument picks the command (by name, or by its length when it names none)
// and the rest follow it, as after the tool's global options.
//
// Properties checked (abort on violation):
// - parse throws nothing but cli::usage_error (CLI11's errors become usage
//   errors with a message);
// - what it accepts names the command, with between its min and max
//   positionals;
// - canonical round trip: the accepted options written as "--name=value",
//   then "--", then the positionals, parse to the same options and
//   positionals;
// - list options (--with, --to, --names, --include, --exclude) split into
//   non-empty items that join back to the value, or throw usage_error;
// - time options (--since, --until) go through parse_time without throwing.
#include "cli.hpp"
#include "commands.hpp"
#include "time_text.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace cli = storewatch::cli;

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_cli: property violated at line %u: %s\n", static_cast<unsigned>(where.line()), what);
  std::abort();
}

/// The tool's command line with all its commands.
std::unique_ptr<cli::command_line> tool_line() {
  auto line = std::make_unique<cli::command_line>();
  cli::add_store_commands(*line);
  cli::add_tail_command(*line);
  cli::add_stats_command(*line);
  cli::add_watch_command(*line);
  return line;
}

const std::vector<std::string>& command_names() {
  static const std::vector<std::string> names{"init", "create", "share", "unshare", "delete", "publish",
                                              "ls",   "cat",    "tail",  "stats",   "watch"};
  return names;
}

/// What an accepted command line said: the command, its positionals, and
/// each option given with its values.
struct accepted {
  std::string command;
  std::vector<std::string> positionals;
  std::map<std::string, std::vector<std::string>> options;
};

std::optional<accepted> documented(const std::vector<std::string>& args) {
  auto line = tool_line();
  try {
    if (line->parse(args)) return std::nullopt;  // help
  } catch (const cli::usage_error& error) {
    require(std::string_view(error.what()).size() > 0, "a usage error without a message");
    return std::nullopt;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "fuzz_cli: parse threw %s\n", other.what());
    require(false, "parse threw something other than usage_error");
  }
  const auto& parsed = line->parsed();
  require(parsed.command != nullptr, "accepted without a command");
  accepted out{parsed.command->name, parsed.positionals, {}};
  for (const auto* option : parsed.command->app->get_options()) {
    if (option->get_positional() || option->count() == 0) continue;
    out.options[option->get_name()] = option->results();
  }
  require(out.positionals.size() >= parsed.command->min_positionals &&
              out.positionals.size() <= parsed.command->max_positionals,
          "accepted a wrong number of positionals");
  return out;
}

void check_list(const std::string& value, std::string_view option) {
  std::vector<std::string> items;
  try {
    items = cli::split_list(value, option);
  } catch (const cli::usage_error&) {
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
  bool named = false;
  for (const auto& name : command_names()) named = named || name == args.front();
  if (!named) args.front() = command_names()[args.front().size() % command_names().size()];

  const auto parsed = documented(args);
  if (!parsed) return 0;
  std::vector<std::string> canonical{parsed->command};
  for (const auto& [name, values] : parsed->options) {
    for (const auto& value : values) {
      canonical.push_back(name + "=" + value);
      const auto bare = name.substr(2);
      if (bare == "with" || bare == "to" || bare == "names" || bare == "include" || bare == "exclude") {
        check_list(value, bare);
      }
      if (bare == "since" || bare == "until") (void)cli::parse_time(value);
    }
  }
  canonical.emplace_back("--");
  canonical.insert(canonical.end(), parsed->positionals.begin(), parsed->positionals.end());
  const auto again = documented(canonical);
  require(again.has_value(), "the canonical form of accepted arguments is rejected");
  require(again->command == parsed->command && again->positionals == parsed->positionals &&
              again->options == parsed->options,
          "the canonical form of accepted arguments parses differently");
  return 0;
}
