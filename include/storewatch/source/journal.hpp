/// \file
/// The per-user event journal of a local_store: `journal_source` (which
/// polls it) and the writer. Kept so that existing includes go on working;
/// the journal lives in journal/ (format, layout, scan, writer, reader).
#pragma once

#include <storewatch/journal/reader.hpp>
#include <storewatch/journal/writer.hpp>
