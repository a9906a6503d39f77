#include "cli/ui.h"

#include <locale.h>
#include <unistd.h>
#include <wchar.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cwchar>
#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace meshwire::cli {

Ui::Ui() {
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  fancy_ = isatty(STDOUT_FILENO) && !(no_color && *no_color) &&
           !(term && std::string(term) == "dumb");
}

std::string PaddedTo(const std::string& text, std::size_t columns) {
  // Columns from the C library's Unicode tables (wcwidth under C.UTF-8,
  // glibc's built-in locale, whatever the user's locale): combining marks
  // and joiners take none, East Asian wide characters and emoji two.
  static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  const locale_t previous = utf8 ? uselocale(utf8) : static_cast<locale_t>(nullptr);
  std::size_t width = 0;
  std::mbstate_t state{};
  for (std::size_t i = 0; i < text.size();) {
    wchar_t wc = 0;
    const std::size_t n = utf8 ? std::mbrtowc(&wc, text.data() + i, text.size() - i, &state) : 1;
    if (n == 0 || n > text.size() - i) {  // a NUL, or bytes that are no character: a column each
      state = {};
      ++width;
      ++i;
      continue;
    }
    const int w = utf8 ? wcwidth(wc) : 1;
    width += w < 0 ? 1 : static_cast<std::size_t>(w);
    i += n;
  }
  if (previous) uselocale(previous);
  return width >= columns ? text : text + std::string(columns - width, ' ');
}

std::string ShellQuoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void PrintJson(const nlohmann::json& j) {
  std::printf("%s\n", j.dump().c_str());
}

std::string StdoutProblem() {
  errno = 0;
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return "";
  // errno is that of this flush; an earlier one's failure only left the flag.
  if (errno == 0) return "could not write to standard output";
  return "could not write to standard output (" + std::string(std::strerror(errno)) + ")";
}

std::optional<Error> HandOutToken(const std::string& text, const std::string& id,
                                  const std::function<void()>& revoke, const std::string& revoke_hint) {
  std::signal(SIGPIPE, SIG_IGN);  // a reader that left: the write fails (EPIPE) instead of killing us
  std::printf("%s\n", text.c_str());
  const std::string problem = StdoutProblem();
  if (problem.empty()) return std::nullopt;
  try {
    revoke();
  } catch (const std::exception& e) {
    return Error(1, "output_failed", "Created token " + id + " but " + problem + ", and could not revoke it (" +
                                         e.what() + "): " + revoke_hint + ".");
  }
  return Error(1, "output_failed", "The token could not be shown: " + problem + ". It was revoked.");
}

std::string Ui::Ok() const { return fancy_ ? "\033[32m✓\033[0m" : "OK"; }
std::string Ui::Unmarked() const { return fancy_ ? " " : "  "; }
std::string Ui::Bad() const { return fancy_ ? "\033[31m✗\033[0m" : "FAILED"; }
std::string Ui::Dot(const std::string& status) const {
  if (!fancy_) return "*";
  if (status == "active") return "\033[32m●\033[0m";
  if (status == "idle") return "\033[33m●\033[0m";
  return "\033[90m●\033[0m";
}
std::string Ui::Web() const { return fancy_ ? "🕸 " : ""; }
std::string Ui::Arrow() const { return fancy_ ? "→" : "->"; }
std::string Ui::Bullet() const { return fancy_ ? "•" : "*"; }
std::string Ui::Bold(const std::string& s) const { return fancy_ ? "\033[1m" + s + "\033[0m" : s; }
std::string Ui::Dim(const std::string& s) const { return fancy_ ? "\033[2m" + s + "\033[0m" : s; }

std::string Shown(std::string_view text, bool multiline) {
  std::string out;
  out.reserve(text.size());
  char escape[12];
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      if (multiline && c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
        ++i;  // a CRLF line end is a line end
      } else if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t'))) || c == 0x7f) {
        std::snprintf(escape, sizeof escape, "\\x%02x", c);
        out += escape;
        ++i;
      } else {
        out.push_back(static_cast<char>(c));
        ++i;
      }
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte, each continuation
    // 10xxxxxx, no overlong form, nothing past U+10FFFF nor a surrogate.
    const std::size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    char32_t cp = n == 4 ? c & 0x07 : n == 3 ? c & 0x0f : c & 0x1f;
    bool valid = n != 0 && c < 0xf5 && i + n <= text.size();
    for (std::size_t k = 1; valid && k < n; ++k) {
      valid = (byte(i + k) & 0xc0) == 0x80;
      cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    valid = valid && cp >= (n == 2 ? 0x80u : n == 3 ? 0x800u : 0x10000u) && cp <= 0x10ffff &&
            !(cp >= 0xd800 && cp <= 0xdfff);
    if (!valid) {  // a stray byte: 0x9b alone is CSI to a terminal in an 8-bit locale
      std::snprintf(escape, sizeof escape, "\\x%02x", c);
      out += escape;
      ++i;
      continue;
    }
    // C1 controls, and the bidirectional overrides and isolates that make a
    // line read in another order than it is written.
    if (cp <= 0x9f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
      std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(cp));
      out += escape;
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

namespace {
std::string g_mesh_hint;  // SetMeshHint's; the CLI runs one command per process
}  // namespace

void SetMeshHint(std::string sentence) { g_mesh_hint = std::move(sentence); }

int Fail(const Error& e) {
  std::string hint;
  if (e.code() == "mesh_not_found" && !g_mesh_hint.empty()) hint = " " + g_mesh_hint;
  else if (const char* env = std::getenv("MESHWIRE_TOKEN"); e.status() == 401 && env && *env) {
    // The product page's fixes (`init --token`, `login`) save a token that
    // this variable still outranks.
    hint = " The token comes from this shell's MESHWIRE_TOKEN (unless --token gave one), which outranks "
           "~/.meshwire/credentials.json: unset it or set it to a valid token.";
  }
  std::fprintf(stderr, "meshwire: %s%s\n", Shown(e.what()).c_str(), hint.c_str());
  return ExitCodeOf(e);
}

int ExitCodeOf(const Error& e) {
  if (e.code() == "unreachable") return kExitUnreachable;
  if (e.code() == "timeout" || e.code() == "tls_untrusted" || e.code() == "https_required") return kExitUnreachable;
  if (e.code() == "wait_timeout") return kExitTimeout;
  if (e.status() == 2) return kExitUsage;
  return kExitError;
}

int FailUnexpected(const std::exception& e) {
  if (const auto* type = dynamic_cast<const nlohmann::json::type_error*>(&e); type && type->id == 316) {
    return FailUsage("Text given to meshwire (a message, a name, an id, or this folder's name) is not UTF-8; "
                     "convert or rename it (for example with `iconv -f LATIN1 -t UTF-8`) and run it again.");
  }
  if (const auto* error = dynamic_cast<const Error*>(&e)) return Fail(*error);
  return Fail(Error(1, "error", e.what()));
}

int FailUsage(const std::string& message) {
  std::fprintf(stderr, "meshwire: %s\n", message.c_str());
  return kExitUsage;
}

std::string MaskToken(const std::string& token, const Ui& ui) {
  if (token.size() < 12) return "(set)";
  std::string masked = token.substr(0, 3);
  for (int i = 0; i < 12; ++i) masked += ui.Bullet();
  return masked + token.substr(token.size() - 6);
}

std::string Tilde(const std::string& path) {
  const char* home = std::getenv("HOME");
  if (home && *home && path.rfind(home, 0) == 0) return "~" + path.substr(std::strlen(home));
  return path;
}

std::string Ago(long long ms) {
  long long s = ms < 0 ? 0 : ms / 1000;
  if (s < 60) return std::to_string(s) + "s ago";
  if (s < 3600) return std::to_string(s / 60) + "m ago";
  if (s < 86400) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

}  // namespace meshwire::cli
