// The S3 headers as libcurl 7.80 to 7.84 sees them: CMakeLists.txt accepts
// libcurl 7.80, but CURLOPT_PROTOCOLS_STR came in 7.85, so s3/http.hpp falls
// back to CURLOPT_PROTOCOLS below it. This file pretends to be built against
// 7.80, with the headers installed here, so the fallback branch compiles in
// every packaging run and cannot rot.
#include <curl/curlver.h>
#undef LIBCURL_VERSION_NUM
#define LIBCURL_VERSION_NUM 0x075000
// The headers here (7.85 or later) mark CURLOPT_PROTOCOLS deprecated.
#define CURL_DISABLE_DEPRECATION

#include <storewatch/s3/http.hpp>

#include <asio/any_io_executor.hpp>

static_assert(LIBCURL_VERSION_NUM < 0x075500, "the fallback branch is the one compiled here");

// Every member of the client, so the request set-up that holds the fallback is compiled.
template class storewatch::s3::detail::http_client_impl<asio::any_io_executor>;
