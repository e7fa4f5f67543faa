/// \file
/// The umbrella header: includes every public header of storewatch,
/// real-time notifications of file operations on a shared store.
#pragma once

#include <storewatch/backoff.hpp>
#include <storewatch/checkpoint.hpp>
#include <storewatch/diagnostics.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/hints.hpp>
#include <storewatch/store/inventory.hpp>
#include <storewatch/journal/reader.hpp>
#include <storewatch/listener.hpp>
#include <storewatch/poller.hpp>
#include <storewatch/source.hpp>
#include <storewatch/source/directory.hpp>
#include <storewatch/source/memory.hpp>
#include <storewatch/stats.hpp>
#include <storewatch/store/local_store.hpp>
#include <storewatch/store/open_store.hpp>
#include <storewatch/store/rules.hpp>
#include <storewatch/stream.hpp>
#include <storewatch/text.hpp>
#include <storewatch/version.hpp>

/// \namespace storewatch
/// Real-time notifications of file operations (CREATE, SHARE, UNSHARE,
/// DELETE and applications' own events) for Asio services.
///
/// A source (`memory_source`, `journal_source`, or `local_store::events()`)
/// is read by a `poller` into a bounded `event_stream`, which consumers
/// `co_await` (`async_next`); an `event_listener` wraps the three and calls
/// handlers, keeping a `checkpoint`. Everything runs on the executors you
/// give; the library starts no thread. Errors are `errc` values in the
/// "storewatch" category.
