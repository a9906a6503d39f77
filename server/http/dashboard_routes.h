// The relay's dashboard (docs/API.md, "Dashboard"): three static files,
// server/http/dashboard/{index.html,app.js,app.css}, embedded at build time
// and served without a token; the page signs in through /auth/web and then
// calls the REST API with the user's token, as any client does.
//
//   GET /dashboard             the page
//   GET /dashboard/app.js      its script (an ES module)
//   GET /dashboard/app.css     its style
//   GET /  (a browser's, Accept: text/html), GET /dashboard/   302 to /dashboard
#pragma once

namespace meshwire {

class Router;

void AddDashboardRoutes(Router& router);

}  // namespace meshwire
