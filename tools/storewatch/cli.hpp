// The storewatch tool's command line, on CLI11: the global options, one
// subcommand per command with its options and positional arguments, the
// help text, and every mistake as a usage error (exit status 2) that names
// the argument, option or environment variable.
#pragma once

#include <storewatch/version.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cstdio>

#include <cstddef>
#include <cstdlib>
#include <functional>
#include <memory>
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

inline constexpr std::string_view default_root = "storewatch-demo";

/// Where the store is, and what said so (for error messages).
struct store_location {
  std::string text = std::string(default_root);
  std::string origin = "the default";  // "option '--store'", "STOREWATCH_ROOT", ...
};

struct command_spec;

/// What the command line said: the global options, the command and its
/// positional arguments (its options are in the command's own variables).
struct invocation {
  store_location store;
  std::optional<std::string> endpoint;  // --endpoint
  std::optional<std::string> region;    // --region
  std::optional<std::string> profile;   // --profile
  std::string addressing;               // "path" (--path-style), "virtual" (--virtual-hosted) or ""
  std::string user;                     // --user, else STOREWATCH_USER
  std::string user_origin;              // "option '--user'" or "STOREWATCH_USER", for messages
  const command_spec* command = nullptr;
  std::vector<std::string> positionals;
};

/// One command: its name, what it takes, and what runs it.
struct command_spec {
  std::string name;
  std::string positionals;  // for help, e.g. "PATH [FILE|-]"
  std::size_t min_positionals = 0;
  std::size_t max_positionals = 0;
  std::string summary;
  std::string notes{};  // what `COMMAND --help` adds after the options
  std::function<int(invocation&)> run{};
  CLI::App* app = nullptr;
};

/// Adds `--NAME VALUE_NAME`, whose value (when given) goes to `into`.
inline CLI::Option* add_value(CLI::App& app, const std::string& name, std::optional<std::string>& into,
                              const std::string& help, const std::string& value_name) {
  return app.add_option_function<std::string>("--" + name, [&into](const std::string& value) { into = value; }, help)
      ->type_name(value_name);
}

/// Adds the flag `--NAME`.
inline CLI::Option* add_flag(CLI::App& app, const std::string& name, bool& into, const std::string& help) {
  return app.add_flag("--" + name, into, help);
}

/// The tool's command line: the global options, the commands added with
/// `add`, and `parse`.
class command_line {
 public:
  command_line() : app_("", "storewatch") {
    app_.formatter(std::make_shared<help_format>(*this));
    app_.set_help_flag("-h,--help", "print this help");
    // One command: after it, a command's name is an argument ("ls" in
    // `share ls --with bob`), not the start of another command.
    app_.require_subcommand(0, 1);
    app_.add_flag("--version", version_, "print the version");
    // The store: --store (or --root), else STOREWATCH_STORE, else
    // STOREWATCH_ROOT, else ./storewatch-demo; what said so is kept for
    // messages, so these fallbacks are read here rather than by CLI11.
    for (const char* variable : {"STOREWATCH_ROOT", "STOREWATCH_STORE"}) {
      const char* value = std::getenv(variable);
      if (value && *value) parsed_.store = {value, variable};
    }
    for (const char* name : {"--store", "--root"}) {
      const auto given = [this, name](const std::string& value) {
        parsed_.store = {value, "option '" + std::string(name) + "'"};
      };
      app_.add_option_function<std::string>(name, given, "the store")->type_name("LOCATION");
    }
    app_.add_option_function<std::string>(
            "--endpoint", [this](const std::string& value) { parsed_.endpoint = value; }, "the S3 service")
        ->type_name("URL");
    app_.add_option_function<std::string>(
            "--region", [this](const std::string& value) { parsed_.region = value; }, "the S3 region")
        ->type_name("NAME");
    app_.add_option_function<std::string>(
            "--profile", [this](const std::string& value) { parsed_.profile = value; }, "the AWS profile")
        ->type_name("NAME");
    auto* path_style = app_.add_flag_callback(
        "--path-style", [this] { parsed_.addressing = "path"; }, "http://host/bucket/key");
    auto* virtual_hosted = app_.add_flag_callback(
        "--virtual-hosted", [this] { parsed_.addressing = "virtual"; }, "http://bucket.host/key");
    path_style->excludes(virtual_hosted);
    // --user, else STOREWATCH_USER; read here, as the store, so that
    // messages can say which of the two named a bad user.
    if (const char* value = std::getenv("STOREWATCH_USER"); value && *value) {
      parsed_.user = value;
      parsed_.user_origin = "STOREWATCH_USER";
    }
    app_.add_option_function<std::string>(
            "--user",
            [this](const std::string& value) {
              parsed_.user = value;
              parsed_.user_origin = "option '--user'";
            },
            "who acts")
        ->type_name("NAME");
  }

  command_line(const command_line&) = delete;
  command_line& operator=(const command_line&) = delete;

  /// Adds `spec` as a subcommand; returns it, for its options.
  CLI::App& add(command_spec spec) {
    auto& added = commands_.emplace_back(std::make_unique<command_spec>(std::move(spec)));
    added->app = app_.add_subcommand(added->name, added->summary);
    // Every positional argument is collected, and counted by `parse`, so
    // that a missing or extra one is named as the tool always named it.
    added->app->add_option("arguments", positionals_)->group("");
    return *added->app;
  }

  /// Parses `args` (argv without the program name). Returns the exit status
  /// when the command line asked only for help or the version (printed on
  /// stdout), nullopt when `parsed()` names a command to run. Throws
  /// usage_error.
  std::optional<int> parse(std::vector<std::string> args) {
    // "--name=" gives an empty value, as "--name ''" does (CLI11 would take
    // the next argument instead).
    for (auto arg = args.begin(); arg != args.end() && *arg != "--"; ++arg) {
      if (arg->size() > 3 && arg->starts_with("--") && arg->ends_with('=') && arg->find('=') == arg->size() - 1) {
        arg->pop_back();
        arg = args.insert(arg + 1, std::string());
      }
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    try {
      app_.parse(args);
    } catch (const CLI::CallForHelp&) {
      std::fputs(help().c_str(), stdout);
      return 0;
    } catch (const CLI::ExtrasError&) {
      throw usage_error(extras_message());
    } catch (const CLI::ParseError& error) {
      throw usage_error(error.what());
    }
    if (version_) {
      std::printf("storewatch %s\n", STOREWATCH_VERSION_STRING);
      return 0;
    }
    const auto chosen = app_.get_subcommands();
    if (chosen.empty()) throw usage_error("no command given (see storewatch --help)");
    parsed_.command = find(chosen.front());
    parsed_.positionals = positionals_;
    const auto& spec = *parsed_.command;
    if (positionals_.size() < spec.min_positionals) {
      throw usage_error("'" + spec.name + "' needs " + spec.positionals);
    }
    if (positionals_.size() > spec.max_positionals) {
      throw usage_error("unexpected argument '" + positionals_[spec.max_positionals] + "' for '" + spec.name + "'");
    }
    return std::nullopt;
  }

  /// `parse` of `argv` as main gets it.
  std::optional<int> parse(int argc, char** argv) { return parse(std::vector<std::string>(argv + 1, argv + argc)); }

  /// What the command line said, after `parse`.
  invocation& parsed() noexcept { return parsed_; }

  /// The help of the command being parsed, or the tool's.
  std::string help() const {
    const auto chosen = app_.get_subcommands();
    return chosen.empty() ? app_.help() : chosen.front()->help();
  }

 private:
  /// CLI11's help, laid out as the tool's help always was.
  class help_format : public CLI::Formatter {
   public:
    explicit help_format(const command_line& line) : line_(line) {}

    std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode) const override {
      const auto* spec = line_.find(app);
      return spec ? command_help(*spec) : tool_help();
    }

   private:
    std::string tool_help() const {
      std::string out =
          "usage: storewatch [--store LOCATION] [S3 OPTIONS] [--user NAME] COMMAND [ARGS]\n"
          "       storewatch COMMAND --help | --help | --version\n\n"
          "  --store LOCATION  the store: a folder, or s3://bucket[/prefix]\n"
          "                    (default: $STOREWATCH_STORE, else $STOREWATCH_ROOT, else ./" +
          std::string(default_root) +
          ")\n"
          "  --root DIR        the same as --store\n"
          "  --user NAME       who acts (default: $STOREWATCH_USER)\n\n"
          "S3 options (an s3:// store; each beats the environment and ~/.aws):\n"
          "  --endpoint URL    the S3 service, http(s)://host[:port] (default: $AWS_ENDPOINT_URL_S3,\n"
          "                    else $AWS_ENDPOINT_URL, else the profile's endpoint_url, else AWS's)\n"
          "  --region NAME     the region (default: $AWS_REGION, else $AWS_DEFAULT_REGION, else the\n"
          "                    profile's region, else us-east-1)\n"
          "  --profile NAME    the profile of ~/.aws/config and ~/.aws/credentials (default:\n"
          "                    $AWS_PROFILE, else default); it beats $AWS_ACCESS_KEY_ID, as with aws --profile\n"
          "  --path-style      http://host/bucket/key (default for endpoints that are not AWS's)\n"
          "  --virtual-hosted  http://bucket.host/key (default on AWS)\n\n"
          "Credentials, CA bundle and the rest come as the AWS CLI finds them: AWS_ACCESS_KEY_ID and\n"
          "AWS_SECRET_ACCESS_KEY, a web identity, the profile's keys or credential_process, container\n"
          "credentials, EC2 instance metadata; AWS_CA_BUNDLE or the profile's ca_bundle.\n"
          "\ncommands:\n";
      for (const auto& c : line_.commands_) {
        out += "  " + pad(c->name, 8) + " " + pad(c->positionals, 16) + " " + c->summary + "\n";
      }
      return out;
    }

    static std::string command_help(const command_spec& c) {
      const bool has_options = c.app->get_options([&c](const CLI::Option* o) { return shown(c, o); }).size() > 0;
      std::string out = "usage: storewatch [--store LOCATION] [--user NAME] " + c.name +
                        (c.positionals.empty() ? "" : " " + c.positionals) + (has_options ? " [OPTIONS]" : "") +
                        "\n\n" + c.summary + "\n";
      for (const auto* o : c.app->get_options([&c](const CLI::Option* o) { return shown(c, o); })) {
        const auto name = o->get_name().substr(2) + (o->get_type_size() != 0 ? " " + o->get_type_name() : "");
        out += "  --" + pad(name, 18) + " " + o->get_description() + "\n";
      }
      if (!c.notes.empty()) out += "\n" + c.notes;
      return out;
    }

    static bool shown(const command_spec& c, const CLI::Option* o) {
      return o != c.app->get_help_ptr() && !o->get_positional();
    }

    static std::string pad(std::string text, std::size_t width) {
      if (text.size() < width) text.resize(width, ' ');
      return text;
    }

    const command_line& line_;
  };

  const command_spec* find(const CLI::App* app) const {
    for (const auto& c : commands_) {
      if (c->app == app) return c.get();
    }
    return nullptr;
  }

  /// An argument nobody takes, named as the tool always named it.
  std::string extras_message() const {
    const auto chosen = app_.get_subcommands();
    const std::array<const CLI::App*, 2> apps{chosen.empty() ? nullptr : chosen.front(), &app_};
    for (const CLI::App* where : apps) {
      if (!where) continue;
      const auto rest = where->remaining();
      if (rest.empty()) continue;
      std::string arg = rest.front();
      if (!arg.starts_with("-")) return "unknown command '" + arg + "' (see storewatch --help)";
      if (const auto equals = arg.find('='); equals != std::string::npos) arg.resize(equals);
      if (where == &app_) return "unknown option '" + arg + "' (see storewatch --help)";
      return "unknown option '" + arg + "' for '" + where->get_name() + "'";
    }
    return "unexpected arguments (see storewatch --help)";
  }

  CLI::App app_;
  invocation parsed_;
  bool version_ = false;
  std::vector<std::string> positionals_;
  std::vector<std::unique_ptr<command_spec>> commands_;
};

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
