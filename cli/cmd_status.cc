// `meshwire status`, `meshwire agents`, `meshwire integrate`.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/context.h"
#include "schemas/json_io.h"
#include "schemas/time_format.h"
#include "server/core/clock.h"

namespace meshwire::cli {

namespace {
using nlohmann::json;
}

int RunStatus(int argc, char** argv) {
  CLI::App app{"Check that your credentials, mesh and agent are wired up, and that the relay "
               "answers.",
               "meshwire status"};
  CommandContext ctx;
  ctx.AddFlags(app);
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  const Ui& ui = ctx.ui();
  const ClientConfig& c = ctx.config();
  const std::string agent_name = ctx.AgentName();  // as send and listen name it
  const std::string broken = ctx.MeshJsonProblem(c.mesh_id);  // said whether or not the relay answers
  // A broken .mesh.json's mesh and agent are unknown: never the ones it would replace.
  // (A .mesh.json that only names no mesh still names its agent, as send and listen take it.)
  const bool agent_unknown = !ctx.MeshJsonProblem(c.agent_name).empty() && !c.mesh_json_names_no_mesh;
  json out = {{"url", c.url.value},
              {"mesh", broken.empty() ? json(c.mesh_id.value) : json(nullptr)},
              {"agent", agent_unknown ? json(nullptr) : json(agent_name)},
              {"token", c.token.empty() ? "" : MaskToken(c.token.value, Ui())}};
  std::string service = "unknown", mesh_line, agents_line, agent_id, agent_problem;
  // credentials.json that exists but cannot be read: not the same as none.
  const std::string unreadable =
      Tilde((c.home / "credentials.json").string()) +
      (c.credentials_unreadable == kNotJsonObject  // RequireToken says it alike
           ? " is not a JSON object: move it aside and run `meshwire login`"
           : " cannot be read (" + c.credentials_unreadable + "): fix its permissions or run `meshwire login`");
  int exit_code = kExitOk;
  try {
    RelayClient& client = ctx.Client(RetryPolicy::None(), /*anonymous=*/true);
    HealthAnswer h = client.Health();
    service = "online";
    out["service"] = {{"status", h.status}, {"version", h.version}, {"storage", h.storage}};
    // Every failed check says why in --json's "error" too.
    if (c.token.empty()) {
      const std::string why = c.credentials_unreadable.empty() ? "no credentials: run `meshwire login`"
                                                                : "no credentials: " + unreadable;
      mesh_line = ui.Bad() + " " + why;
      out["error"] = why;
      exit_code = kExitUsage;
    } else if (!broken.empty()) {
      mesh_line = ui.Bad() + " " + broken;
      out["error"] = broken;
      exit_code = kExitUsage;
    } else if (c.mesh_id.empty()) {
      mesh_line = ui.Bad() + " none chosen: `meshwire mesh list`, then `meshwire mesh use ID`";
      out["error"] = "no mesh chosen: `meshwire mesh list`, then `meshwire mesh use ID`";
      exit_code = kExitUsage;
    } else {
      try {
        MeshDetails d = client.GetMesh(c.mesh_id.value);
        mesh_line = ui.Ok() + " exists \"" + Shown(d.mesh.name) + "\"";
        agents_line = std::to_string(d.registered) + " registered, " + std::to_string(d.active) + " active";
        out["mesh_name"] = d.mesh.name;
        out["agents"] = {{"registered", d.registered}, {"active", d.active}};
        for (const AgentInfo& a : client.Agents(c.mesh_id.value)) {
          if (a.agent.name != agent_name) continue;
          if (a.agent.owner == ctx.User()) {
            agent_id = a.agent.agent_id;
          } else {
            agent_problem = agent_name + " is " + a.agent.owner + "'s agent, not yours: choose your own with --name "
                            "NAME or MESHWIRE_AGENT_NAME, or run `meshwire init` in your workspace";
            exit_code = kExitUsage;
          }
        }
        if (std::string invalid = ctx.InvalidAgentName(agent_name); !invalid.empty()) {
          agent_problem = invalid;
          exit_code = kExitUsage;
        } else if (agent_id.empty() && agent_problem.empty()) {
          agent_problem = "not registered yet (`meshwire send`, `listen` or `init` registers it)";
        }
      } catch (const Error& e) {
        mesh_line = ui.Bad() + " " + Shown(e.what());
        out["error"] = e.what();
        exit_code = ExitCodeOf(e);
      }
    }
  } catch (const Error& e) {
    // The exit code `agents` would give: 3 only when nothing answered (a
    // server that is not a relay answered: 1); a URL no client could use: 2.
    exit_code = ExitCodeOf(e);
    const bool silent = e.code() == "unreachable" || e.code() == "timeout";  // nothing answered
    service = e.code() == "config" ? "misconfigured" : silent ? "offline" : "error";
    out["error"] = e.what();
  }
  out["service_status"] = service;
  if (!agent_id.empty()) out["agent_id"] = agent_id;
  if (!c.workspace_agent_name.empty()) out["workspace_agent_name"] = c.workspace_agent_name;
  if (!agent_problem.empty()) out["agent_problem"] = agent_problem;
  if (ctx.json()) {
    PrintJson(out);
    return exit_code;
  }
  auto or_none = [](const std::string& s, const char* none) { return s.empty() ? std::string(none) : s; };
  std::printf("\n%sMeshWire Status\n\nConfiguration:\n", ui.Web().c_str());
  const std::string no_token = c.credentials_unreadable.empty() ? "(none: run `meshwire login`)"
                                                                 : "(none: " + unreadable + ")";
  std::printf("Token : %s\n", c.token.empty() ? no_token.c_str() : MaskToken(c.token.value, ui).c_str());
  // Each may come from a committed .mesh.json, or the environment: shown, not obeyed.
  std::printf("URL : %s\n", Shown(c.url.value).c_str());
  std::printf("Mesh : %s\n",
              Shown(broken.empty() ? or_none(c.mesh_id.value, "(none)") : "(unknown: " + broken + ")").c_str());
  const std::string agent_line =
      agent_unknown
          ? "(unknown: the same .mesh.json)"
          : agent_name +
                (agent_id.empty() ? (agent_problem.empty() ? "" : ": " + agent_problem)
                                  : " (" + agent_id + ")") +
                (c.workspace_agent_name.empty() ? ""
                                                : ", your name for the workspace's " +
                                                      c.workspace_agent_name + " (config.json)");
  std::printf("Agent : %s\n", Shown(agent_line).c_str());
  std::printf("\nConnection:\n");
  std::printf("Service : %s %s\n", service == "online" ? ui.Ok().c_str() : ui.Bad().c_str(), service.c_str());
  if (service != "online") {
    std::printf("  %s\n", Shown(out["error"].get<std::string>()).c_str());
  } else {
    std::printf("Mesh : %s\n", mesh_line.c_str());
    if (!agents_line.empty()) std::printf("Agents : %s\n", agents_line.c_str());
  }
  return exit_code;
}

int RunAgents(int argc, char** argv) {
  CLI::App app{"Who is in the mesh: status (active: seen in the last minute, idle: the last hour, "
               "offline), whether listening, and when last seen. --delete removes an agent.",
               "meshwire agents"};
  CommandContext ctx;
  ctx.AddFlags(app);
  std::string remove;
  app.add_option("--delete", remove,
                 "remove this agent (name or id) from the mesh, with its cursor: one of yours, or any "
                 "if you own the mesh")
      ->check(NotEmpty("give the agent's name or id (see `meshwire agents`)"));
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  const Ui& ui = ctx.ui();
  try {
    const std::string& mesh = ctx.RequireMesh();
    if (!remove.empty()) {
      ctx.Client().DeleteAgent(mesh, remove);
      if (ctx.json()) {
        PrintJson({{"deleted", remove}, {"mesh_id", mesh}});
      } else {
        std::printf("%s Removed agent %s from mesh %s.\n", ui.Ok().c_str(), Shown(remove).c_str(), mesh.c_str());
      }
      return kExitOk;
    }
    auto agents = ctx.Client().Agents(mesh);
    if (ctx.json()) {
      json arr = json::array();
      for (const AgentInfo& a : agents) arr.push_back(ToJson(a.agent, a.status, a.listening));
      PrintJson({{"agents", arr}});
      return kExitOk;
    }
    const std::string me = ctx.AgentName();  // as send and listen name it
    const std::string& user = ctx.User();
    Millis now = SystemClock().Now();
    std::printf("\n%sAgents in mesh %s (%zu)\n\n", ui.Web().c_str(), mesh.c_str(), agents.size());
    for (const AgentInfo& a : agents) {
      std::string name = Shown(a.agent.name) + (a.agent.name == me && a.agent.owner == user ? " (you)" : "");
      std::printf("%s %-7s %-28s %s %s%s\n", ui.Dot(a.status).c_str(), Shown(a.status).c_str(), name.c_str(),
                  Shown(a.agent.agent_id).c_str(), Ago(now - a.agent.last_seen).c_str(),
                  a.listening ? "  listening" : "");
    }
    if (agents.empty()) std::printf("No agents yet: `meshwire init --harness ...` registers one.\n");
  } catch (const Error& e) {
    return Fail(e);
  }
  return kExitOk;
}

int RunIntegrate(int argc, char** argv) {
  CLI::App app{"Print the mesh's complete integration guide (markdown): REST calls, MCP tools, "
               "config snippets.",
               "meshwire integrate"};
  CommandContext ctx;
  ctx.AddFlags(app, true, false, true);
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  try {
    const std::string& mesh = ctx.RequireMesh();
    std::string guide = ctx.Client().Integrate(mesh);
    if (ctx.json()) {
      PrintJson({{"mesh_id", mesh}, {"markdown", guide}});
      return kExitOk;
    }
    std::fwrite(guide.data(), 1, guide.size(), stdout);
  } catch (const Error& e) {
    return Fail(e);
  }
  return kExitOk;
}

}  // namespace meshwire::cli
