// The storewatch tool's argument parsing: a table of options per command,
// checked in one place. Errors are usage errors (exit status 2) that name
// the argument.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace storewatch::cli {

/// A usage error: the message names the bad argument.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A runtime error: what failed, on which path or user.
struct runtime_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct option_spec {
  std::string_view name;  // without "--"
  bool takes_value;
  std::string_view help;
  std::string_view value_name = "VALUE";  // what the help shows after the option: FILE, N, SECONDS, ...
};

struct command_spec {
  std::string_view name;
  std::string_view positionals;  // for help, e.g. "PATH [FILE|-]"
  std::size_t min_positionals;
  std::size_t max_positionals;
  std::vector<option_spec> options;
  std::string_view summary;
};

/// What the command line said.
struct parsed_args {
  std::vector<std::string> positionals;
  std::map<std::string, std::string, std::less<>> options;  // flags map to ""

  bool has(std::string_view name) const { return options.find(name) != options.end(); }
  std::optional<std::string> get(std::string_view name) const {
    const auto found = options.find(name);
    if (found == options.end()) return std::nullopt;
    return found->second;
  }
};

/// Parses `args` against `spec`: "--name value", "--name=value" and flags;
/// "--" ends options. Throws usage_error.
inline parsed_args parse(const command_spec& spec, const std::vector<std::string>& args) {
  parsed_args out;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    if (options_done || !arg.starts_with("--")) {
      out.positionals.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const auto equals = name.find('='); equals != std::string::npos) {
      value = name.substr(equals + 1);
      name.resize(equals);
    }
    const option_spec* option = nullptr;
    for (const auto& candidate : spec.options) {
      if (candidate.name == name) option = &candidate;
    }
    if (!option) throw usage_error("unknown option '--" + name + "' for '" + std::string(spec.name) + "'");
    if (option->takes_value) {
      if (!value) {
        if (i + 1 >= args.size()) throw usage_error("option '--" + name + "' needs a value");
        value = args[++i];
      }
    } else if (value) {
      throw usage_error("option '--" + name + "' takes no value");
    }
    if (out.has(name)) throw usage_error("option '--" + name + "' given twice");
    out.options.emplace(name, value.value_or(""));
  }
  if (out.positionals.size() < spec.min_positionals) {
    throw usage_error("'" + std::string(spec.name) + "' needs " + std::string(spec.positionals));
  }
  if (out.positionals.size() > spec.max_positionals) {
    throw usage_error("unexpected argument '" + out.positionals[spec.max_positionals] + "' for '" +
                      std::string(spec.name) + "'");
  }
  return out;
}

/// Parses `text` as a plain decimal number, digits with an optional
/// fraction ("10", "0.25"): no sign, exponent, hex, "inf" or "nan", so what
/// the user typed is what is used. Throws usage_error naming `option`.
inline double parse_decimal_option(std::string_view text, std::string_view option) {
  const auto digits = [](std::string_view part) {
    return !part.empty() && part.find_first_not_of("0123456789") == std::string_view::npos;
  };
  const auto dot = text.find('.');
  const bool ok =
      dot == std::string_view::npos ? digits(text) : digits(text.substr(0, dot)) && digits(text.substr(dot + 1));
  if (!ok || text.size() > 20) {
    throw usage_error("option '--" + std::string(option) + "': '" + std::string(text) +
                      "' is not a number of the form 12 or 0.5");
  }
  return std::stod(std::string(text));
}

/// Splits "a,b,c"; empty items are a usage error naming `option`.
inline std::vector<std::string> split_list(std::string_view text, std::string_view option) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const auto item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) throw usage_error("option '--" + std::string(option) + "' has an empty item");
    items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

}  // namespace storewatch::cli
