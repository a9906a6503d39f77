// Output for people and scripts. Colour and symbols (✓ ✗ ● 🕸 →) only when
// stdout is a terminal and NO_COLOR is unset; otherwise plain ASCII words, so
// logs and pipes stay readable. Errors are one sentence on stderr.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "schemas/error.h"

namespace meshwire::cli {

class Ui {
 public:
  Ui();

  std::string Ok() const;      // "✓" in green, or "OK"
  std::string Unmarked() const;  // spaces as wide as Ok(): a row of a list that Ok() marks others of
  std::string Bad() const;     // "✗" in red, or "FAILED"
  std::string Dot(const std::string& status) const;  // "●" coloured by status, or "*"
  std::string Web() const;     // "🕸 " or ""
  std::string Arrow() const;   // "→" or "->"
  std::string Bullet() const;  // "•" or "*" (masking)
  std::string Bold(const std::string& s) const;
  std::string Dim(const std::string& s) const;

 private:
  bool fancy_;
};

/// Text that came from the relay (a message, a mesh name, an error) made
/// safe for a terminal: control characters, bidirectional overrides and
/// bytes that are not UTF-8 become visible escapes (`\x1b`, `\u009b`,
/// `\u202e`), so whoever wrote it cannot clear the reader's screen, retitle
/// the window, rewrite a line with `\r` or reorder it. `multiline` keeps
/// newlines (CRLF as one) and tabs (a message's content); otherwise the text
/// stays on one line. The --json output is left as it is: JSON escapes these.
std::string Shown(std::string_view text, bool multiline = false);

/// `text` (UTF-8, as Shown returns it) followed by spaces up to `columns`
/// terminal columns: a column of names stays aligned when one holds accents,
/// CJK or emoji (printf's `%-24s` counts bytes). Longer text is left whole.
std::string PaddedTo(const std::string& text, std::size_t columns);

/// `text` in single quotes for a POSIX shell (a command to copy).
std::string ShellQuoted(const std::string& text);

/// Prints `j` on one line of stdout (the --json output).
void PrintJson(const nlohmann::json& j);

/// Flushes stdout; "" when everything printed so far was written, else why
/// not (a full disk, a closed stdout, a pipe whose reader left). What
/// acknowledges or hands out something on the strength of having printed it
/// (listen, wait, token create) asks first.
std::string StdoutProblem();

/// Hands out a new token: prints `text` (its secret, or --json's object)
/// alone on stdout, so `$(meshwire token create ...)` takes it. When nobody
/// could read it (a reader that left: SIGPIPE is ignored from here on, so
/// the process lives to say so; a full disk), calls `revoke`, so that no
/// token nobody has stays live, and returns Error 1 `output_failed` saying
/// so, or how to revoke token `id` by hand (`revoke_hint`, "revoke it with ...")
/// when `revoke` failed. nullopt once it was written.
std::optional<Error> HandOutToken(const std::string& text, const std::string& id,
                                  const std::function<void()>& revoke, const std::string& revoke_hint);

/// The exit code the contract gives `error`: 3 unreachable relay, 4 timed
/// out, 2 for configuration and usage problems (status 2), else 1.
int ExitCodeOf(const Error& error);
/// Prints "meshwire: <message>" on stderr and returns ExitCodeOf(error).
/// A 401 with MESHWIRE_TOKEN set, and an unknown mesh whose id came from
/// somewhere the user may not think of (SetMeshHint), say where to look.
int Fail(const Error& error);
/// For Fail: the sentence an unknown mesh adds, saying where this command's
/// mesh id came from and how to change it there ("" for a flag: the user
/// typed it).
void SetMeshHint(std::string sentence);
/// The same for an exception that is not an Error (a library's): text that
/// is not UTF-8 is a usage error (2) with a sentence saying so, else 1.
int FailUnexpected(const std::exception& error);
/// For problems found before talking to the relay (missing token or mesh):
/// prints the sentence and returns 2.
int FailUsage(const std::string& message);

/// "mw_" + bullets + the last 6 characters.
std::string MaskToken(const std::string& token, const Ui& ui);

/// `path` with $HOME shown as "~" (for messages).
std::string Tilde(const std::string& path);

/// "3s ago", "5m ago", "2h ago", "4d ago".
std::string Ago(long long ms);

}  // namespace meshwire::cli
