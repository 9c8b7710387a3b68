# Included from server/cli/CMakeLists.txt.
add_library(kaon_serve_command ${CMAKE_CURRENT_LIST_DIR}/serve_command.cc ${CMAKE_CURRENT_LIST_DIR}/serve_limit_flags.cc)
target_link_libraries(kaon_serve_command PUBLIC kaon_http kaon_grpc kaon_metrics kaon_engine_core kaon_chat_template kaon_cli_flags)
