# Included from server/cli/CMakeLists.txt.
add_library(kaon_chat_template_command ${CMAKE_CURRENT_LIST_DIR}/chat_template_command.cc)
target_link_libraries(kaon_chat_template_command PUBLIC kaon_chat_template kaon_common nlohmann_json::nlohmann_json)
