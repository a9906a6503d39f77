# Turns a text file into a C++ source defining `std::string_view NAME()` in
# namespace NS. Usage: cmake -DIN=... -DOUT=... -DNAME=... -DNS=... -P embed.cmake
file(READ "${IN}" content)
set(delim "meshwire_embed")
file(WRITE "${OUT}.tmp"
  "// Generated from ${IN}; edit that file, not this one.\n"
  "#include <string_view>\n"
  "namespace ${NS} {\n"
  "std::string_view ${NAME}() {\n"
  "  static constexpr std::string_view kSource = R\"${delim}(${content})${delim}\";\n"
  "  return kSource;\n"
  "}\n"
  "}  // namespace ${NS}\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
