// Text made safe inside HTML: the relay's sign-in pages and the page the
// CLI's login callback shows both put messages from elsewhere into HTML.
#pragma once

#include <string>
#include <string_view>

namespace meshwire {

inline std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace meshwire
