// storewatch: real-time notifications of file operations on a shared store.
#pragma once

#include <storewatch/checkpoint.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/listener.hpp>
#include <storewatch/poller.hpp>
#include <storewatch/source.hpp>
#include <storewatch/source/memory.hpp>
#include <storewatch/stats.hpp>
#include <storewatch/stream.hpp>
#include <storewatch/version.hpp>
#include <storewatch/source/journal.hpp>
#include <storewatch/store/local_store.hpp>
