// `meshwire mcp --mesh ID`: the MCP stdio server that desktop assistants start.
// Nothing but JSON-RPC goes to stdout; logs go to stderr.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/harness/harness.h"
#include "mcp/mcp_server.h"
#include "mcp/mesh_tools.h"
#include "mcp/stdio_transport.h"

#ifndef MESHWIRE_VERSION
#define MESHWIRE_VERSION "0.0.0"
#endif

namespace meshwire::cli {

int RunMcp(int argc, char** argv) {
  CLI::App app{"Run the MCP server on stdin/stdout for an MCP client (Claude Desktop, Cursor, "
               "Claude Code, VS Code, ...), with the tools meshwire_send_message, "
               "meshwire_get_messages, meshwire_list_agents, meshwire_status, "
               "meshwire_reply_to_message.",
               "meshwire mcp"};
  CommandContext ctx;
  ctx.AddFlags(app, true, true, false);
  std::string default_mesh, default_name;
  app.add_option("--default-mesh", default_mesh,
                 "mesh id when neither --mesh, MESHWIRE_MESH_ID nor the workspace's .mesh.json "
                 "names one (user-wide client entries use it, so each workspace keeps its mesh)")
      ->check(NotEmpty("give a mesh id, or leave --default-mesh out"));
  app.add_option("--default-name", default_name,
                 "agent name when neither --name, MESHWIRE_AGENT_NAME nor .mesh.json names one")
      ->check(NotEmpty("give an agent name, or leave --default-name out"));
  int max_wait = 25;
  app.add_option("--max-wait", max_wait, "longest wait of meshwire_get_messages, in seconds")
      ->check(CLI::Range(0, 60))
      ->capture_default_str();
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  ::signal(SIGPIPE, SIG_IGN);  // a client that goes away must not kill us mid-write
  if (!default_mesh.empty()) ctx.flags().default_mesh_id = default_mesh;
  if (!default_name.empty()) ctx.flags().default_agent_name = default_name;
  const ClientConfig& c = ctx.config();
  mcp::MeshToolsOptions options;
  options.url = c.url.value;
  options.token = c.token.value;
  options.mesh_id = c.mesh_id.value;
  options.harness = c.harness.empty() ? "mcp" : c.harness;
  options.agent_name = ctx.AgentName(options.harness + "-agent");
  // A user-wide entry (--default-name) in a workspace that init wired for
  // another platform last: .mesh.json names that platform's own default
  // agent, which is not this one's. Each platform is its own agent, as init
  // registered it: this one keeps its name (a name the user chose for the
  // workspace, not a platform's default, is every platform's).
  if (const Harness* recorded = PlatformNamingWorkspaceAgent(c);
      recorded && !default_name.empty() && default_name != recorded->default_agent_name) {
    options.agent_name = OwnAgentName(c, default_name);  // this user's own name for it, if init gave one
    options.harness = "mcp";
    for (const Harness& h : Harnesses()) {
      if (default_name == h.default_agent_name) options.harness = h.name;
    }
  }
  std::string invalid = ctx.MeshJsonProblem(c.mesh_id);
  if (invalid.empty()) invalid = ctx.InvalidAgentName(options.agent_name, options.harness + "-agent");
  if (!invalid.empty()) {
    options.setup_problem = invalid + " Change it in this server's entry in your MCP client (or rerun `meshwire "
                                      "init`), then restart the server.";
  } else if (std::string token = ctx.TokenFormatProblem(); !token.empty()) {
    options.setup_problem =
        token +
        " Fix it in this server's entry in your MCP client (or run `meshwire login`), "
        "then restart the server.";
  }
  options.max_wait_s = max_wait;
  options.home = c.home.string();
  // Without a token or mesh the server still starts (clients show it as
  // connected): it says so on stderr, which clients log, in its
  // instructions, and in every tool's answer, meshwire_status included.
  mcp::MeshTools tools(options);
  if (std::string problem = tools.SetupProblem(); !problem.empty()) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    std::fflush(stderr);
  }
  tools.Start();
  mcp::McpServer server(tools, "meshwire", MESHWIRE_VERSION);
  tools.SetNotifier([&server](const std::string& method, const Json& params) { server.rpc().Notify(method, params); });
  std::ios::sync_with_stdio(false);
  // End of stdin: the client is gone. Requests in flight get kEofGrace, but
  // a call blocked on a relay that does not answer (or the registration,
  // up to the client's 30 s read timeout) cannot be interrupted: past the
  // grace and a second more, the process exits anyway, as clients expect.
  // `exiting` orders the two ends: the watchdog acts only while this
  // function has not finished (so `server` still exists), and takes the
  // output from the server first (SetSink waits for a line being written).
  static std::mutex exiting;
  static bool finished = false;
  mcp::ServeStdio(server.rpc(), std::cin, std::cout, [&server] {
    std::thread([&server] {
      std::this_thread::sleep_for(mcp::kEofGrace + std::chrono::seconds(1));
      std::lock_guard lock(exiting);
      if (finished) return;
      server.rpc().SetSink([](const std::string&) {});
      std::fprintf(stderr, "meshwire mcp: stdin closed; exiting without waiting for the relay any longer.\n");
      std::fflush(stderr);
      std::_Exit(kExitOk);
    }).detach();
  });
  tools.Stop();  // no push after this: the server it writes through goes first
  std::lock_guard lock(exiting);
  finished = true;
  return kExitOk;
}

}  // namespace meshwire::cli
