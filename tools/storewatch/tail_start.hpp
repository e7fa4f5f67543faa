// Where and how often `tail` reads a store's journal, per kind of store:
// the defaults that decide what a tail costs on S3, where every request is
// billed.
#pragma once

#include "sync.hpp"

#include <storewatch/storewatch.hpp>
#ifdef STOREWATCH_WITH_S3
#include <storewatch/store/s3_store.hpp>
#endif

#include <chrono>
#include <string>

namespace storewatch::cli {

/// The poll interval of a tail without --interval, in seconds: 0.2 on a
/// folder store, where a poll reads local files.
inline double default_tail_interval(const local_store&) { return 0.2; }

/// The cursor of the journal's end as it is now: read through to it. What
/// the reads find wrong is reported here: a source reports a problem once
/// (an unreadable epoch file, say) and the tail goes on from this cursor.
template <class Source>
std::string end_cursor(asio::io_context& io, Source& source) {
  std::string cursor;
  for (;;) {
    auto batch = poll_once(io, source, cursor, 4096);
    report_problems(batch);
    cursor = std::move(batch.next_cursor);
    if (batch.events.empty()) return cursor;
  }
}

#ifdef STOREWATCH_WITH_S3
/// On S3, the library's poll interval (`poller_options`, 5 s): each poll is
/// a LIST request, billed.
inline double default_tail_interval(const s3::s3_store&) {
  return std::chrono::duration<double>(poller_options{}.poll_interval).count();
}

/// On S3, from the listing alone: LIST requests, no GET of every object.
inline std::string end_cursor(asio::io_context& io, s3::s3_journal_source& source) {
  return complete<std::string>(
      io, [&](auto handler) { source.async_end_cursor(std::move(handler)); }, [&source] { return source.last_error(); });
}
#endif

}  // namespace storewatch::cli
