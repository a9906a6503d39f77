# meshwire_embed(OUT_VAR NAMESPACE NAME INPUT): generates a C++ source that
# defines `std::string_view NAMESPACE::NAME()` returning INPUT's text, and
# appends it to OUT_VAR. A missing INPUT embeds "" with a warning.
function(meshwire_embed out_var namespace name input)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_${name}.cc)
  if(NOT EXISTS ${input})
    message(WARNING "${input} does not exist yet; ${name}() will be empty")
    file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/empty_${name}.txt "")
    set(input ${CMAKE_CURRENT_BINARY_DIR}/empty_${name}.txt)
  endif()
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${input} -DOUT=${out} -DNAME=${name} -DNS=${namespace}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    DEPENDS ${input} ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    COMMENT "Embedding ${input}")
  set(${out_var} ${${out_var}} ${out} PARENT_SCOPE)
endfunction()
