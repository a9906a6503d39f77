// The one place a storage option becomes a Store: the relay and `meshwire
// admin` both open storage here.
#pragma once

#include <memory>
#include <string>

#include "server/core/store.h"

namespace meshwire {

/// Opens the store an option string names: "sqlite:PATH" or a bare path.
/// Throws Error 503 (naming the path) when it cannot, 400 for an unknown or
/// unsupported scheme.
std::unique_ptr<Store> OpenStore(const std::string& spec);

}  // namespace meshwire
