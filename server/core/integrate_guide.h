// The integration guide served by GET /mesh/{mesh}/integrate (text/markdown).
#pragma once

#include <string>
#include <vector>

#include "schemas/model.h"

namespace meshwire {

struct GuideContext {
  std::string base_url;                  // e.g. "http://127.0.0.1:7420", no trailing slash
  Mesh mesh;                             // the mesh the guide is for
  std::vector<std::string> agent_names;  // agents registered in it now (may be empty)
  bool sign_in_page = true;              // `meshwire login` works (not a relay of --auth token)
};

/// The whole guide for one mesh: what meshwire is, curl examples for every
/// call of the REST API with this mesh's id and URL filled in, the MCP tool
/// definitions, and the config snippets for each harness. Never contains a
/// token: examples use $MESHWIRE_TOKEN.
std::string IntegrateGuide(const GuideContext& ctx);

}  // namespace meshwire
