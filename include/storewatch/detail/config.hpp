// Asio configuration shared by every storewatch header.
#pragma once

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE 1
#endif

// Asio 1.22 does not detect coroutine support in clang with libstdc++.
// The CMake target defines these too; this covers other build systems as long
// as storewatch is included before Asio.
#if defined(__clang__) && !defined(ASIO_VERSION)
#ifndef ASIO_HAS_CO_AWAIT
#define ASIO_HAS_CO_AWAIT 1
#endif
#ifndef ASIO_HAS_STD_COROUTINE
#define ASIO_HAS_STD_COROUTINE 1
#endif
#endif

#include <asio.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/as_tuple.hpp>

#if !defined(ASIO_HAS_CO_AWAIT)
#error "storewatch needs C++20 coroutines in Asio (define ASIO_HAS_CO_AWAIT=1 for clang)"
#endif
