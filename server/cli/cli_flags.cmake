# Numeric flags in vLLM's size forms and one-line command-line errors, shared
# by kaon and kaon-bench (which links nothing else of the server).
add_library(kaon_cli_flags ${CMAKE_CURRENT_LIST_DIR}/size_flag.cc ${CMAKE_CURRENT_LIST_DIR}/flag_options.cc
  ${CMAKE_CURRENT_LIST_DIR}/flag_errors.cc)
target_link_libraries(kaon_cli_flags PUBLIC CLI11::CLI11)
