// storewatch: act on a store and follow its events from a shell.
//
// The store is a folder (local_store) or, when built with STOREWATCH_WITH_S3,
// an S3 bucket and key prefix (s3::s3_store, `--store s3://bucket/prefix`).
// The commands are written once, over either store (store.hpp): `complete`
// (sync.hpp) drives a store's asynchronous operation to its end.
//
// Exit status: 0 success, 1 runtime error (one line on stderr naming the path,
// user or S3 request; also a tail whose standard output closed or whose
// checkpoint cannot be saved), 2 usage error (naming the argument, option or
// environment variable), 3 `share`, `unshare` or `delete` matched none of
// your versions, 124 `tail --timeout` expired before `--count` events
// arrived. Nothing goes to stdout on error. Output that could not be written
// (a full disk, `> /dev/full`) is a runtime error too, whatever the command.
//
// This file: the command line (cli.hpp, on CLI11), its command groups
// (store_commands.cpp, follow_commands.cpp, stats_command.cpp), and the
// mapping of every failure to its exit status and one line on stderr.
#include "cli.hpp"
#include "commands.hpp"
#include "sync.hpp"

#include <storewatch/text.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <system_error>

namespace {

using namespace storewatch;

bool is_usage_code(std::error_code code) {
  return code == errc::invalid_path || code == errc::invalid_user || code == errc::invalid_event_name ||
         code == errc::invalid_event;
}

/// `status`, or 1 (said on stderr) when what went to stdout could not all be
/// written: `storewatch cat V > file` on a full disk must not exit 0 with a
/// short file.
int checked_output(int status) {
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  if (flushed && !std::ferror(stdout)) return status;
  const int reason = errno;
  std::fprintf(stderr, "storewatch: writing to standard output failed%s%s\n", reason && !flushed ? ": " : "",
               reason && !flushed ? std::strerror(reason) : "");
  return status == 0 ? 1 : status;
}

int run(int argc, char** argv) {
  try {
    cli::command_line line;
    cli::add_store_commands(line);
    cli::add_tail_command(line);
    cli::add_stats_command(line);
    cli::add_watch_command(line);
    if (const auto done = line.parse(argc, argv)) return *done;
    auto& c = line.parsed();
    return c.command->run(c);
  } catch (const cli::usage_error& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return 2;
  } catch (const cli::store_failure& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return is_usage_code(error.code) ? 2 : 1;
  } catch (const std::system_error& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return is_usage_code(error.code()) ? 2 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) { return checked_output(run(argc, argv)); }
