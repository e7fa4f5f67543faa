// The journal record line moved to journal/format.hpp; this header is kept
// so that existing includes go on working.
#pragma once

#include <storewatch/journal/format.hpp>
