// `meshwire admin token create|list|revoke` and `meshwire admin migrate`: work on the
// relay's storage directly, no running relay needed (headless machines, CI,
// moving to PostgreSQL).
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/ui.h"
#include "relay-client/config.h"
#include "schemas/error.h"
#include "schemas/ids.h"
#include "schemas/json_io.h"
#include "schemas/time_format.h"
#include "server/core/clock.h"
#include "server/core/mesh_service.h"
#include "server/storage/migrate.h"
#include "server/storage/store_factory.h"
#include "server/core/store.h"

namespace meshwire::cli {

namespace {

volatile std::sig_atomic_t g_migrate_signal = 0;  // the SIGINT or SIGTERM that stops a migration

/// While it lives, a first SIGINT or SIGTERM is only noted (the copy then
/// rolls back at its next step and says so); a second one, of either,
/// acts as usual.
class NoteStopSignals {
 public:
  NoteStopSignals() {
    struct sigaction note {};
    note.sa_handler = [](int sig) {
      g_migrate_signal = sig;
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
      // A connection or a lock may take a while: say that it was heard.
      constexpr char kHeard[] = "\nmeshwire: stopping after the current step (Ctrl+C again to quit at once)...\n";
      [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, kHeard, sizeof kHeard - 1);
    };
    sigemptyset(&note.sa_mask);
    sigaction(SIGINT, &note, &old_int_);
    sigaction(SIGTERM, &note, &old_term_);
  }
  ~NoteStopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  NoteStopSignals(const NoteStopSignals&) = delete;
  NoteStopSignals& operator=(const NoteStopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

/// How the user stopped the migration, for its sentences.
const char* StopSignalName() { return g_migrate_signal == SIGTERM ? "SIGTERM" : "Ctrl+C"; }

int RunMigrate(const std::string& from, const std::string& to) {
  if (from.rfind("sqlite:", 0) != 0) {
    std::fprintf(stderr, "meshwire: --from must be sqlite:PATH (the relay's SQLite file).\n");
    return kExitUsage;
  }
  if (to.rfind("postgres://", 0) != 0 && to.rfind("postgresql://", 0) != 0) {
    std::fprintf(stderr, "meshwire: --to must be a PostgreSQL URI: postgres://user:pass@host:port/db.\n");
    return kExitUsage;
  }
  try {
    CheckPostgresUrl(to, "--to");
  } catch (const Error& e) {
    std::fprintf(stderr, "meshwire: %s\n", e.what());
    return kExitUsage;
  }
  NoteStopSignals note_stop;
  try {
    std::fprintf(stderr, "Copying %s into %s ...\n", from.c_str(), StorageForDisplay(to).c_str());
    TableCounts copied = CopySqliteToPostgres(
        from.substr(7), to,
        [](const std::string& table, std::int64_t n, bool done) {
          std::fprintf(stderr, "  %-10s %lld%s\n", table.c_str(), static_cast<long long>(n), done ? "" : " ...");
        },
        [] { return g_migrate_signal != 0; });
    std::int64_t rows = 0;
    for (const auto& [table, n] : copied) rows += n;
    // A command to copy (quoted: a URL's '&' would end it in a shell), the
    // password left for the user to put back.
    const std::string shown = StorageForDisplay(to);
    std::printf("Migrated %lld rows in %zu tables; the counts match. Start the relay on it:\n  meshwire server "
                "--storage %s%s\n",
                static_cast<long long>(rows), copied.size(), ShellQuoted(shown).c_str(),
                shown == to ? "" : "\n(with the password where *** stands)");
    if (g_migrate_signal != 0) {
      std::fprintf(stderr, "meshwire: %s came as the copy was committing: it is whole, as said above.\n",
                   StopSignalName());
    }
  } catch (const MigrationInterrupted&) {
    std::fprintf(stderr,
                 "meshwire: interrupted (%s): the copy was rolled back, so the PostgreSQL database holds none of "
                 "it. Run the same command again to migrate.\n",
                 StopSignalName());
    // Ended by the signal, as the shell that sent it expects (a script
    // stops there; an exit code of 130 would let it go on).
    const int sig = g_migrate_signal;
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return 128 + sig;
  } catch (const Error& e) {
    std::fprintf(stderr, "meshwire: %s\n", e.what());
    return e.status() == 400 ? kExitUsage : kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "meshwire: the migration failed and nothing was written: %s\n", e.what());
    return kExitError;
  }
  return kExitOk;
}

/// `--storage`, as every admin command takes it.
void AddStorageOption(CLI::App* command, std::string& storage) {
  command->add_option("--storage", storage, "sqlite:PATH (default sqlite:$MESHWIRE_HOME/relay.db) or postgres://...")
      ->check(NotEmpty("give the relay's storage, or leave --storage out for the default"));
}

/// The default storage, as `meshwire server` opens it.
std::string DefaultStorage() { return "sqlite:" + MeshwireHomeDir(ProcessEnv()).string() + "/relay.db"; }

int RunTokenList(const std::string& storage, const std::string& user, bool as_json) {
  auto store = OpenExistingStore(storage);
  std::vector<Token> tokens;
  if (user.empty()) {
    tokens = store->AllTokens();
  } else {
    tokens = store->ListTokens(MeshService::CanonicalUser(*store, user));
  }
  if (as_json) {
    nlohmann::json list = nlohmann::json::array();
    for (const Token& t : tokens) {
      nlohmann::json j = ToJson(t);
      j["user"] = t.user;
      list.push_back(std::move(j));
    }
    PrintJson({{"tokens", list}});
    return kExitOk;
  }
  std::printf("Tokens (%zu)%s\n", tokens.size(), user.empty() ? "" : (" of " + user).c_str());
  if (!tokens.empty()) std::printf("\n");
  for (const Token& t : tokens) {
    std::printf("  %s  %s  %s created %s  last used %s%s\n", t.id.c_str(), PaddedTo(Shown(t.user), 16).c_str(),
                PaddedTo(Shown(t.name), 20).c_str(), FormatRfc3339(t.created_at).substr(0, 10).c_str(),
                t.last_used_at ? FormatRfc3339(*t.last_used_at).substr(0, 16).c_str() : "never",
                t.mesh_id ? ("  mesh " + *t.mesh_id).c_str() : "");
  }
  return kExitOk;
}

int RunTokenRevoke(const std::string& storage, const std::string& id) {
  auto store = OpenExistingStore(storage);
  std::optional<Token> token = store->FindToken(id);
  if (!token || !store->RevokeToken(token->user, id)) {
    std::fprintf(stderr, "meshwire: no token %s in %s; `meshwire admin token list` shows them.\n", id.c_str(),
                 StorageForDisplay(storage).c_str());
    return kExitError;
  }
  const bool sqlite = store->Kind() == "sqlite";
  try {
    AnnounceAccessChange(storage, *store, {.token_id = id});
  } catch (const Error& e) {
    std::fprintf(stderr,
                 "meshwire: token %s is revoked in the database, but the running relays could not be told (%s): "
                 "restart them so that they refuse it now.\n",
                 id.c_str(), e.what());
    return kExitError;
  }
  std::printf("Revoked token %s of user %s. %s\n", id.c_str(), token->user.c_str(),
              sqlite ? "A relay running on this database refuses it within about a second."
                     : "The relays on this database refuse it from their next request.");
  return kExitOk;
}

}  // namespace

int RunAdmin(int argc, char** argv) {
  CLI::App app{"Work on the relay's storage directly (no running relay needed).", "meshwire admin"};
  app.require_subcommand(1);
  auto* token = app.add_subcommand("token", "API tokens")->require_subcommand(1);
  auto* create = token->add_subcommand(
      "create", "Create a token for USER (creating the user) and print it alone on stdout.");
  std::string user, name = "admin", storage, mesh;
  create->add_option("--user", user, "the user the token acts as")->required();
  create->add_option("--name", name, "a label for the token")
      ->capture_default_str()
      ->check(NotEmpty("give a label, or leave --name out"));
  create->add_option("--mesh", mesh, "make the token work on this mesh alone")
      ->check(NotEmpty("give the mesh id, or leave --mesh out for a token of every mesh"));
  AddStorageOption(create, storage);
  auto* list = token->add_subcommand(
      "list", "List the tokens of USER, or of every user: ids, users, labels, dates (never their secrets).");
  std::string list_user;
  bool list_json = false;
  list->add_option("--user", list_user, "only this user's tokens (case ignored)")
      ->check(NotEmpty("give the user, or leave --user out for every user's tokens"));
  list->add_flag("--json", list_json, "print {\"tokens\":[...]}, each with its user");
  AddStorageOption(list, storage);
  auto* revoke = token->add_subcommand(
      "revoke", "Revoke token ID of whichever user: the relays on this storage refuse it from then on.");
  std::string revoke_id;
  revoke->add_option("ID", revoke_id, "the token id, tok_... (`meshwire admin token list`)")
      ->required()
      ->check(NotEmpty("give the token id (`meshwire admin token list`)"));
  AddStorageOption(revoke, storage);
  auto* migrate = app.add_subcommand(
      "migrate",
      "Copy a SQLite relay's data (users, token hashes, meshes, members, agents, messages, "
      "cursors) into an empty PostgreSQL database, then check the counts.");
  std::string from, to;
  migrate->add_option("--from", from, "sqlite:PATH, the relay's SQLite file")->required();
  migrate->add_option("--to", to, "postgres://user:pass@host:port/db, an empty database")->required();
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  if (migrate->parsed()) return RunMigrate(from, to);
  if (list->parsed() || revoke->parsed()) {
    if (std::string problem = StorageSpecProblem(storage); !problem.empty()) return FailUsage(problem);
    if (storage.empty()) storage = DefaultStorage();
    try {
      return list->parsed() ? RunTokenList(storage, list_user, list_json) : RunTokenRevoke(storage, revoke_id);
    } catch (const Error& e) {
      std::fprintf(stderr, "meshwire: %s\n", e.what());
      return e.status() == 400 ? kExitUsage : kExitError;
    }
  }
  // Every flag is checked before the storage is opened (which creates a SQLite file).
  if (!IsValidName(user)) {
    return FailUsage("--user must be 1-64 characters of A-Z a-z 0-9 . _ - (got \"" + ShownName(user) + "\").");
  }
  if (std::string problem = StorageSpecProblem(storage); !problem.empty()) return FailUsage(problem);
  try {
    MeshService::CheckTokenName(name);
  } catch (const Error& e) {
    return FailUsage(std::string("--name: ") + e.what());
  }
  if (storage.empty()) {
    // The default storage's folder, as `meshwire server` makes it, so the
    // order of the two commands does not matter.
    ::mkdir(MeshwireHomeDir(ProcessEnv()).string().c_str(), 0700);
    storage = DefaultStorage();
  }
  try {
    // A database no relay has used yet (a mistyped path, or another user's
    // $HOME under sudo): the token works only where the relay runs.
    std::error_code ec;
    const bool fresh = storage.rfind("sqlite:", 0) == 0 && !std::filesystem::exists(storage.substr(7), ec);
    auto store = OpenStore(storage);
    if (fresh) {
      std::fprintf(stderr,
                   "meshwire: note: %s did not exist and was created; the token works only with a relay "
                   "started on it (`meshwire server --storage %s`): pass the relay's --storage if it runs "
                   "elsewhere.\n",
                   storage.substr(7).c_str(), storage.c_str());
    }
    SystemClock clock;
    user = MeshService::CanonicalUser(*store, user);  // user names ignore case: an existing spelling stands
    std::optional<std::string> scope;
    if (!mesh.empty()) {
      if (!store->FindMesh(mesh)) {
        std::fprintf(stderr, "meshwire: no mesh %s in %s; check the id with `meshwire mesh list`.\n",
                     mesh.c_str(), storage.c_str());
        return kExitError;
      }
      // A token scoped to a mesh its user is not in would answer 403 to
      // everything: said now, with the fix.
      if (!store->RoleOf(mesh, user)) {
        std::fprintf(stderr,
                     "meshwire: %s is not a member of mesh %s; have its owner add them first (`meshwire mesh "
                     "members add %s`), then create the token.\n",
                     user.c_str(), mesh.c_str(), user.c_str());
        return kExitError;
      }
      scope = mesh;
    }
    CreatedToken t = MeshService::IssueToken(*store, clock, user, name, scope);
    if (auto lost = HandOutToken(t.secret, t.token.id, [&] { store->RevokeToken(user, t.token.id); },
                                 "revoke it with `meshwire token revoke " + t.token.id + "` as " + user)) {
      return Fail(*lost);
    }
    std::fprintf(stderr, "Created token %s for user %s. Export it: export MESHWIRE_TOKEN=...\n",
                 t.token.id.c_str(), user.c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "meshwire: %s\n", e.what());
    return e.status() == 400 ? kExitUsage : kExitError;
  }
  return kExitOk;
}

}  // namespace meshwire::cli
