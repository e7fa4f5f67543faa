/// \file
/// A store's per-user journals as a whole, for statistics and
/// administration: who has a journal, how many bytes it takes and how many
/// writers wrote it. For a folder store (`journal_inventory`) and, in a
/// program that links `storewatch::s3` (STOREWATCH_WITH_S3), an S3 store
/// (`s3::journal_inventory`).
#pragma once

#include <storewatch/detail/names.hpp>
#include <storewatch/journal/reader.hpp>
#include <storewatch/store/local_store.hpp>
#ifdef STOREWATCH_WITH_S3
#include <storewatch/s3/client.hpp>
#include <storewatch/store/s3_journal.hpp>
#endif

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <system_error>

namespace storewatch {

/// One user's journal as stored.
struct journal_footprint {
  std::uintmax_t bytes = 0;  ///< the size of its segment files (folder store) or objects (S3)
  std::size_t writers = 0;   ///< the writers (store objects, processes) that appended to it
};

/// The journals of the folder store at `root`, by user: the folders under
/// `root`/journals, with the bytes of their segments and their writers'
/// slots. A store without journals has none; files that vanish while they
/// are counted count as empty.
inline std::map<std::string, journal_footprint> journal_inventory(const std::filesystem::path& root) {
  std::map<std::string, journal_footprint> users;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(root / "journals", ec), end; !ec && it != end; it.increment(ec)) {
    auto& footprint = users[it->path().filename().string()];
    for (const auto& writer : detail::list_writers(it->path())) {
      ++footprint.writers;
      for (const auto segment : detail::list_segments(it->path() / writer)) {
        std::error_code size_error;
        const auto size = std::filesystem::file_size(it->path() / writer / detail::segment_name(segment), size_error);
        if (!size_error) footprint.bytes += size;
      }
    }
  }
  return users;
}

/// Makes `store`'s user's journal folder if it is missing: a listener that
/// has received nothing yet makes its user known to the store (so `ls`
/// finds the user). Throws `std::system_error` when it cannot.
template <class Executor>
void ensure_journal(const basic_local_store<Executor>& store) {
  detail::ensure_journal(store.root() / "journals" / store.user());
}

#ifdef STOREWATCH_WITH_S3
namespace s3 {

/// The journals of the S3 store `client` reaches, by user: the folders under
/// journals/ named by a valid user, with the bytes of their objects and the
/// writers named in their object keys. One LIST per 1000 objects; throws
/// `std::system_error` as `client` does.
template <class Executor>
asio::awaitable<std::map<std::string, journal_footprint>> journal_inventory(basic_client<Executor>& client) {
  std::map<std::string, journal_footprint> users;
  list_request folders;
  folders.prefix = "journals/";
  folders.delimiter = "/";
  for (;;) {
    auto page = co_await client.list(folders);
    for (const auto& folder : page.common_prefixes) {
      if (!folder.starts_with(folders.prefix) || !folder.ends_with('/')) continue;
      const auto user = folder.substr(folders.prefix.size(), folder.size() - folders.prefix.size() - 1);
      if (storewatch::detail::user_problem(user).empty()) users[user];
    }
    if (!page.truncated) break;
    folders.continuation_token = std::move(page.next_continuation_token);
  }
  for (auto& [user, footprint] : users) {
    const auto folder = detail::journal_folder(user);
    list_request objects;
    objects.prefix = folder;
    std::set<std::string> seen, writers;  // some servers repeat keys across pages
    for (;;) {
      auto page = co_await client.list(objects);
      for (const auto& object : page.objects) {
        if (!seen.insert(object.key).second) continue;
        footprint.bytes += object.size;
        const auto entry = detail::parse_journal_entry(std::string_view(object.key).substr(folder.size()));
        if (!entry || entry->what == detail::journal_entry::kind::floor) continue;
        writers.insert(entry->writer);
        if (entry->what == detail::journal_entry::kind::segment) {  // named: its last and first records' writers
          if (const auto first = detail::parse_journal_entry(entry->first)) writers.insert(first->writer);
        }
      }
      if (!page.truncated) break;
      objects.continuation_token = std::move(page.next_continuation_token);
    }
    footprint.writers = writers.size();
  }
  co_return users;
}

}  // namespace s3
#endif

}  // namespace storewatch
