// The programs' precompiled header (cmake/storewatch-pch.cmake): the
// library (with the S3 store for the programs that link it) and CLI11.
#pragma once
#include <storewatch/storewatch.hpp>
#ifdef STOREWATCH_WITH_S3  // the program links storewatch::s3
#include <storewatch/store/s3_store.hpp>
#endif

#if __has_include(<CLI/CLI.hpp>)
#include <CLI/CLI.hpp>
#endif
