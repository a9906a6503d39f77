// Types for meshwire/extension (extension.mjs): the Copilot CLI extension
// factory. Structural types only, so this package needs no Copilot SDK: pass
// `joinSession` from "@github/copilot-sdk/extension".

/** A tool result as the Copilot SDK expects it (its ToolResultObject). */
export interface MeshToolResult {
  textResultForLlm: string;
  resultType: "success" | "failure";
  /** The same sentence as textResultForLlm, on failures. */
  error?: string;
}

/** The second argument the Copilot SDK passes to a tool handler. */
export interface MeshToolInvocation {
  sessionId?: string;
  toolCallId?: string;
  toolName?: string;
  /** Aborted when the runtime completes the request or the session disconnects. */
  signal?: AbortSignal;
}

/** JSON Schema of a tool's arguments (a plain object with "type": "object"). */
export type MeshToolParameters = {
  type: "object";
  properties: Record<string, Record<string, unknown>>;
  required?: string[];
};

export interface MeshSendMessageArgs {
  /** The message, 1 to 10,240 bytes of UTF-8. */
  content: string;
  /** Agent name or id; absent (or "all"): every other agent in the mesh. */
  to?: string;
}

export interface MeshGetMessagesArgs {
  /** 0 to 60; waits at most 25 s. */
  wait_seconds?: number;
  /** 1 to 100 (default 20), as meshwire_get_messages. */
  limit?: number;
}

export interface MeshReplyArgs {
  message_id: string;
  content: string;
}

export interface MeshTool<TArgs = Record<string, unknown>> {
  name: "mesh_send_message" | "mesh_get_messages" | "mesh_list_agents" | "mesh_status" | "mesh_reply_to_message";
  description: string;
  parameters: MeshToolParameters;
  /** Never throws: relay errors and bad arguments are "failure" results with a sentence saying what to do. */
  handler(args: TArgs, invocation?: MeshToolInvocation): Promise<MeshToolResult>;
}

export interface MeshHooks {
  /** Tells the model what the mesh is, who this agent is and how to use the tools. */
  onSessionStart(input?: unknown, invocation?: { sessionId: string }): Promise<{ additionalContext: string }>;
  /** Stops the heartbeat and the background poll. */
  onSessionEnd(input?: unknown, invocation?: { sessionId: string }): Promise<void>;
}

/** What createCopilotExtension passes to joinSession. */
export interface MeshJoinConfig {
  tools: MeshTool<any>[];
  hooks: MeshHooks;
}

/** The parts of the Copilot SDK's CopilotSession this extension uses. */
export interface MeshSession {
  send(options: { prompt: string; mode?: "enqueue" | "immediate" }): Promise<unknown>;
  log(message: string, options?: { level?: "info" | "warning" | "error"; ephemeral?: boolean }): Promise<void> | void;
}

export interface CopilotExtensionOptions<TSession extends MeshSession = MeshSession> {
  /** joinSession from "@github/copilot-sdk/extension". */
  joinSession: (config: MeshJoinConfig) => Promise<TSession>;
  /**
   * The relay. Default: MESHWIRE_URL, else the url in ~/.meshwire/credentials.json,
   * else in ~/.meshwire/config.json, else http://127.0.0.1:7420.
   */
  url?: string;
  /**
   * Milliseconds to pause before the next long-poll after one that brought no
   * message (default 1000). After an error the poll backs off 2 s, 5 s, then 15 s.
   */
  pollInterval?: number;
  /**
   * Milliseconds between heartbeats (default 30000; from 100 to 2147483647, else
   * createCopilotExtension throws a RangeError). pollInterval: from 0 to 2147483647.
   */
  heartbeatInterval?: number;
  /** Environment to read MESHWIRE_* from (default process.env). */
  env?: Record<string, string | undefined>;
  /** fetch to reach the relay with (default globalThis.fetch). */
  fetch?: typeof globalThis.fetch;
  /** Home folder holding .meshwire/ unless MESHWIRE_HOME is set (default os.homedir()). */
  homedir?: string;
  /** Where to look for .mesh.json, upwards (default process.cwd()). */
  cwd?: string;
  /**
   * Which tools the session gets from this extension. "auto" (default): the
   * five mesh_* tools, unless Copilot's MCP configuration
   * ($COPILOT_HOME/mcp-config.json, default ~/.copilot) starts the meshwire
   * MCP server, which brings the same tools: then none, so the model never
   * sees two copies. "extension": always the mesh_* tools. "none": no tools;
   * the extension only brings incoming messages into the conversation.
   */
  tools?: "auto" | "extension" | "none";
}

/**
 * Joins the Copilot CLI session with the MeshWire tools and hooks, registers
 * this agent (harness "copilot"), then heartbeats and long-polls in the
 * background, injecting each message from another agent with
 * session.send({ prompt, mode: "immediate" }). Resolves to the session.
 */
export declare function createCopilotExtension<TSession extends MeshSession>(
  options: CopilotExtensionOptions<TSession>,
): Promise<TSession>;
