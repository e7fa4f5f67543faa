// The tool's and the test helper processes' precompiled header
// (cmake/storewatch-pch.cmake): the library, with the S3 store, and CLI11.
#pragma once
#include <storewatch/storewatch.hpp>
#ifdef STOREWATCH_WITH_S3  // the program links storewatch::s3
#include <storewatch/store/s3_store.hpp>
#endif

#include <CLI/CLI.hpp>
