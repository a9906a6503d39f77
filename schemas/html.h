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

/// The 🕸 icon as an inline SVG, for the <head> of every page meshwire
/// serves: a browser then asks for no /favicon.ico (from the CLI's loopback
/// callback that request would fail, its server being gone by then). A
/// Content-Security-Policy must allow it with `img-src data:`.
inline constexpr std::string_view kIconLink =
    "<link rel=\"icon\" href=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 100 "
    "100'%3E%3Ctext y='.9em' font-size='90'%3E%F0%9F%95%B8%3C/text%3E%3C/svg%3E\">";

}  // namespace meshwire
