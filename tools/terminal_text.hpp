// Text for a terminal: what the tool prints in its text format, made safe
// whatever a store's events or a directory's file names hold.
#pragma once

#include <storewatch/detail/text.hpp>

#include <string>
#include <string_view>

namespace storewatch::cli {

/// `text` with every character a terminal would act on or hide escaped:
/// newlines and other control bytes, escape sequences and bytes of invalid
/// UTF-8 as \xHH, C1 controls and invisible formatting characters
/// (bidirectional overrides, zero-width characters) as \uHHHH. So an
/// event's data cannot start a forged line, move the cursor, retitle the
/// window or reorder what is shown. Backslashes are left as they are.
inline std::string terminal_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  detail::append_displayable(out, text);
  return out;
}

}  // namespace storewatch::cli
