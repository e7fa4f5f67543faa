// The test programs' precompiled header (cmake/storewatch-pch.cmake): the
// library, with the S3 store, and Catch, last (its macros are short words).
#pragma once
#include <storewatch/storewatch.hpp>
#include <storewatch/store/s3_store.hpp>

#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>
