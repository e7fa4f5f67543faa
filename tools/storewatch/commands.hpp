// The tool's command groups, each adding its commands to the command line.
#pragma once

#include "cli.hpp"

namespace storewatch::cli {

/// init, create, share, unshare, delete, publish, compact, ls, cat (store_commands.cpp).
void add_store_commands(command_line& line);
/// tail (follow_commands.cpp).
void add_tail_command(command_line& line);
/// stats (stats_command.cpp).
void add_stats_command(command_line& line);
/// watch (follow_commands.cpp).
void add_watch_command(command_line& line);

}  // namespace storewatch::cli
