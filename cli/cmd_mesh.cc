// `meshwire mesh create|use|list|delete|members` and `meshwire token create|list|revoke`.
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <string>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/context.h"
#include "schemas/json_io.h"
#include "schemas/time_format.h"

namespace meshwire::cli {

namespace {
using nlohmann::json;

/// Where a question reaches a person at a terminal who can answer it (stdin
/// a terminal; stderr, else stdout): nullptr for a script.
FILE* AskingStream() {
  if (!isatty(STDIN_FILENO)) return nullptr;
  return isatty(STDERR_FILENO) ? stderr : isatty(STDOUT_FILENO) ? stdout : nullptr;
}

/// Asks `question` [y/N] on `out`; true for y or yes (any case).
bool Confirmed(FILE* out, const std::string& question) {
  std::fprintf(out, "%s [y/N] ", question.c_str());
  std::fflush(out);
  char line[64] = {0};
  std::string answer = std::fgets(line, sizeof line, stdin) != nullptr ? line : "";
  while (!answer.empty() && (answer.back() == '\n' || answer.back() == '\r' || answer.back() == ' ')) answer.pop_back();
  for (char& ch : answer) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return answer == "y" || answer == "yes";
}

}  // namespace

int RunMesh(int argc, char** argv) {
  CLI::App app{"Meshes: named channels where your agents register and exchange messages.",
               "meshwire mesh"};
  app.require_subcommand(1);
  app.fallthrough();  // the common flags may follow the subcommand
  CommandContext ctx;
  ctx.AddFlags(app, false, false, true);
  std::string name, id, user;
  auto* create = app.add_subcommand("create", "create a mesh you own");
  create->add_option("NAME", name, "a name for the mesh")->required()->check(NotEmpty("give the mesh a name"));
  auto* use = app.add_subcommand("use", "make a mesh the active one (~/.meshwire/config.json)");
  use->add_option("ID", id, "the mesh id")->required()->check(NotEmpty("give the mesh id (`meshwire mesh list`)"));
  auto* list = app.add_subcommand("list", "the meshes you are a member of");
  auto* del = app.add_subcommand("delete", "delete a mesh you own, with its agents and messages");
  del->add_option("ID", id, "the mesh id")->required()->check(NotEmpty("give the mesh id (`meshwire mesh list`)"));
  bool yes = false;
  del->add_flag("--yes,-y", yes, "do not ask (on a terminal it asks first; scripts are never asked)");
  auto* members = app.add_subcommand("members", "list, add or remove the users who share a mesh");
  members->add_option("--mesh", id, "mesh id (default: MESHWIRE_MESH_ID, .mesh.json, `mesh use`)")
      ->check(NotEmpty("give the mesh id, or leave --mesh out"));
  auto* add = members->add_subcommand("add", "share the mesh with USER (owner only)");
  add->add_option("USER", user, "the user name")->required()->check(NotEmpty("give the user's name"));
  auto* remove = members->add_subcommand("remove", "take USER out of the mesh");
  remove->add_option("USER", user, "the user name")->required()->check(NotEmpty("give the user's name"));
  // A subcommand's help lists its own options only: name the common ones it takes too.
  for (auto* sub : {create, use, list, del, members}) {
    sub->footer("Also takes --url URL, --token TOKEN and --json (`meshwire mesh --help`).");
  }
  for (auto* sub : {add, remove}) {
    sub->footer("Also takes --mesh ID (`meshwire mesh members --help`), --url URL, --token TOKEN and --json.");
  }
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  // Before anything resolves the configuration (it is resolved once).
  if (*members && !id.empty()) ctx.flags().mesh_id = id;
  const Ui& ui = ctx.ui();
  try {
    RelayClient& client = ctx.Client();
    if (*use || *del) SetMeshHint("");  // the id was typed: no setting to point at
    if (*create) {
      Mesh m = client.CreateMesh(name);
      if (ctx.json()) return PrintJson(ToJson(m)), kExitOk;
      std::printf("%s Created mesh: %s \"%s\"\n", ui.Ok().c_str(), m.mesh_id.c_str(), Shown(m.name).c_str());
      std::printf("Run `meshwire mesh use %s` to activate it.\n", m.mesh_id.c_str());
      // A name is a label, not a key: a second mesh of one name is allowed,
      // but rarely meant (the command run twice).
      std::string same;
      try {
        for (const Mesh& other : client.ListMeshes()) {
          if (other.name == m.name && other.owner == m.owner && other.mesh_id != m.mesh_id) {
            same += (same.empty() ? "" : ", ") + other.mesh_id;
          }
        }
      } catch (const Error&) {
        // Only a note: the mesh was made, as said.
      }
      if (!same.empty()) {
        std::fprintf(stderr,
                     "Note: you already had a mesh named \"%s\" (%s); this is another one. Meshes are told "
                     "apart by id: `meshwire mesh delete %s` removes the new one.\n",
                     Shown(m.name).c_str(), same.c_str(), m.mesh_id.c_str());
      }
    } else if (*use) {
      MeshDetails d = client.GetMesh(id);  // must exist and be ours
      SaveActiveMesh(ctx.config().home, d.mesh.mesh_id, ctx.config().url.value);
      if (ctx.json()) return PrintJson({{"active_mesh", d.mesh.mesh_id}, {"url", ctx.config().url.value}}), kExitOk;
      std::printf("%s Active mesh set to: %s\n", ui.Ok().c_str(), d.mesh.mesh_id.c_str());
      // Above config.json come MESHWIRE_MESH_ID and the workspace's .mesh.json.
      const Setting& used = ctx.config().mesh_id;
      if (used.value != d.mesh.mesh_id && (used.source == "env" || used.source == ".mesh.json")) {
        std::printf("Here %s still chooses mesh %s: %s.\n",
                    used.source == "env" ? "MESHWIRE_MESH_ID" : Shown(Tilde(ctx.config().mesh_json->string())).c_str(),
                    Shown(used.value).c_str(),
                    used.source == "env" ? "unset it to use the active mesh"
                                         : ("run `meshwire init --mesh " + d.mesh.mesh_id +
                                            "` to move this workspace to it").c_str());
      }
    } else if (*list) {
      auto meshes = client.ListMeshes();
      if (ctx.json()) {
        json arr = json::array();
        for (const Mesh& m : meshes) arr.push_back(ToJson(m));
        return PrintJson({{"meshes", arr}}), kExitOk;
      }
      std::string active = ctx.config().mesh_id.value;
      std::printf("%sYour meshes (%zu)\n\n", ui.Web().c_str(), meshes.size());
      for (const Mesh& m : meshes) {
        std::printf("%s %s  %s owner %s  created %s\n", m.mesh_id == active ? ui.Ok().c_str() : ui.Unmarked().c_str(),
                    m.mesh_id.c_str(), PaddedTo("\"" + Shown(m.name) + "\"", 24).c_str(), Shown(m.owner).c_str(),
                    FormatRfc3339(m.created_at).substr(0, 10).c_str());
      }
      if (meshes.empty()) std::printf("None yet: `meshwire mesh create NAME`.\n");
    } else if (*del) {
      // On a terminal, a person is asked first: every member's agents and
      // messages go with it, and nothing brings them back. A member who is
      // not the owner is not asked what the relay refuses.
      FILE* asking = AskingStream();
      if (!yes && asking != nullptr) {
        const MeshDetails d = client.GetMesh(id);
        const std::string question =
            "Delete mesh " + id + " \"" + Shown(d.mesh.name) + "\" with its " + std::to_string(d.registered) +
            (d.registered == 1 ? " agent" : " agents") + " and every message in it, for every member? This cannot "
            "be undone.";
        if (d.mesh.owner == ctx.User() && !Confirmed(asking, question)) {
          std::fprintf(stderr, "meshwire: not deleted (answer y to delete it, or pass --yes).\n");
          return kExitError;
        }
      }
      client.DeleteMesh(id);
      const bool was_active = ForgetActiveMesh(ctx.config().home, id);  // it can no longer be
      if (ctx.json()) return PrintJson({{"deleted", id}}), kExitOk;
      std::printf("%s Deleted mesh %s\n", ui.Ok().c_str(), id.c_str());
      if (was_active) std::printf("It was the active mesh: choose another with `meshwire mesh use ID`.\n");
    } else if (*members) {
      const std::string& mesh = ctx.RequireMesh();
      if (*add) {
        const auto added = client.AddMember(mesh, user);
        if (ctx.json()) {
          return PrintJson({{"user", added.user}, {"role", "member"}, {"new_user", added.new_user}}), kExitOk;
        }
        std::printf("%s %s can now use mesh %s\n", ui.Ok().c_str(), added.user.c_str(), mesh.c_str());
        if (added.new_user) {
          // Not an error (a mesh may be shared before a teammate's first sign-in), but a typo looks the same.
          std::printf("The relay knew no user %s: they can use the mesh once they sign in. "
                      "Misspelled? `meshwire mesh members remove %s`.\n",
                      added.user.c_str(), added.user.c_str());
        }
      } else if (*remove) {
        client.RemoveMember(mesh, user);
        if (ctx.json()) return PrintJson({{"removed", user}}), kExitOk;
        std::printf("%s Removed %s from mesh %s\n", ui.Ok().c_str(), user.c_str(), mesh.c_str());
      } else {
        auto list_of = client.Members(mesh);
        if (ctx.json()) {
          json arr = json::array();
          for (const Member& m : list_of) arr.push_back({{"user", m.user}, {"role", m.role}});
          return PrintJson({{"members", arr}}), kExitOk;
        }
        std::printf("%sMembers of mesh %s (%zu)\n\n", ui.Web().c_str(), mesh.c_str(), list_of.size());
        for (const Member& m : list_of) std::printf("  %-24s %s\n", Shown(m.user).c_str(), Shown(m.role).c_str());
      }
    }
  } catch (const Error& e) {
    return Fail(e);
  } catch (const std::exception& e) {
    return FailUnexpected(e);
  }
  return kExitOk;
}

int RunToken(int argc, char** argv) {
  CLI::App app{"API tokens for CI and other machines (mw_...). A token is shown once, at creation.",
               "meshwire token"};
  app.require_subcommand(1);
  app.fallthrough();  // the common flags may follow the subcommand
  CommandContext ctx;
  ctx.AddFlags(app, false, false, true);
  std::string name = "cli", mesh, id;
  auto* create = app.add_subcommand("create", "create a token; prints it once");
  create->add_option("--name", name, "a label for the token")
      ->capture_default_str()
      ->check(NotEmpty("give a label, or leave --name out"));
  create->add_option("--mesh", mesh, "make it work on this mesh alone")
      ->check(NotEmpty("give the mesh id, or leave --mesh out for a token of every mesh"));
  auto* list = app.add_subcommand("list", "your tokens (never their secrets)");
  auto* revoke = app.add_subcommand("revoke", "revoke a token: it fails from the next request on");
  revoke->add_option("ID", id, "the token id (tok_...)")
      ->required()
      ->check(NotEmpty("give the token id (`meshwire token list`)"));
  for (auto* sub : {create, list, revoke}) {
    sub->footer("Also takes --url URL, --token TOKEN and --json (`meshwire token --help`).");
  }
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  const Ui& ui = ctx.ui();
  try {
    RelayClient& client = ctx.Client();
    if (*create) {
      std::optional<std::string> scope;
      if (!mesh.empty()) scope = mesh;
      SetMeshHint("");  // --mesh was typed: no setting to point at
      NewTokenAnswer t = client.CreateToken(name, scope);
      // The token alone on stdout, so `export MESHWIRE_TOKEN=$(meshwire token
      // create ...)` works (as admin token create); the rest on stderr.
      const std::string shown = ctx.json() ? json{{"id", t.id}, {"token", t.token}}.dump() : t.token;
      if (auto lost = HandOutToken(shown, t.id, [&] { client.RevokeToken(t.id); },
                                   "revoke it with `meshwire token revoke " + t.id + "`")) {
        return Fail(*lost);
      }
      if (ctx.json()) return kExitOk;
      std::fprintf(stderr, "%s Created token %s%s. It is shown only this once: store it now (e.g. as a CI "
                           "secret MESHWIRE_TOKEN).\n",
                   ui.Ok().c_str(), t.id.c_str(), scope ? (" for mesh " + *scope).c_str() : "");
    } else if (*list) {
      auto tokens = client.ListTokens();
      if (ctx.json()) {
        json arr = json::array();
        for (const Token& t : tokens) arr.push_back(ToJson(t));
        return PrintJson({{"tokens", arr}}), kExitOk;
      }
      std::printf("%sTokens (%zu)\n\n", ui.Web().c_str(), tokens.size());
      for (const Token& t : tokens) {
        std::printf("  %s  %s created %s  last used %s%s\n", t.id.c_str(), PaddedTo(Shown(t.name), 20).c_str(),
                    FormatRfc3339(t.created_at).substr(0, 10).c_str(),
                    t.last_used_at ? FormatRfc3339(*t.last_used_at).substr(0, 16).c_str() : "never",
                    t.mesh_id ? ("  mesh " + *t.mesh_id).c_str() : "");
      }
    } else if (*revoke) {
      client.RevokeToken(id);
      if (ctx.json()) return PrintJson({{"revoked", id}}), kExitOk;
      std::printf("%s Revoked %s\n", ui.Ok().c_str(), id.c_str());
    }
  } catch (const Error& e) {
    return Fail(e);
  }
  return kExitOk;
}

}  // namespace meshwire::cli
