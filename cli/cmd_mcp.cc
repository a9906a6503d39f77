// `meshwire mcp --mesh ID`: the MCP stdio server that desktop assistants start.
// Nothing but JSON-RPC goes to stdout; logs go to stderr.
#include <csignal>
#include <iostream>

#include "cli/commands.h"
#include "cli/context.h"
#include "mcp/mcp_server.h"
#include "mcp/mesh_tools.h"

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
  int max_wait = 25;
  app.add_option("--max-wait", max_wait, "longest wait of meshwire_get_messages, in seconds")
      ->check(CLI::Range(0, 60))
      ->capture_default_str();
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  ::signal(SIGPIPE, SIG_IGN);  // a client that goes away must not kill us mid-write
  const ClientConfig& c = ctx.config();
  mcp::MeshToolsOptions options;
  options.url = c.url.value;
  options.token = c.token.value;
  options.mesh_id = c.mesh_id.value;
  options.harness = c.harness.empty() ? "mcp" : c.harness;
  options.agent_name = ctx.AgentName(options.harness + "-agent");
  options.max_wait_s = max_wait;
  // Without a token or mesh the server still starts: tools then say what to do.
  mcp::MeshTools tools(options);
  tools.Start();
  mcp::McpServer server(tools, "meshwire", MESHWIRE_VERSION);
  std::ios::sync_with_stdio(false);
  server.Serve(std::cin, std::cout);
  return kExitOk;
}

}  // namespace meshwire::cli
