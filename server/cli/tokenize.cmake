# Included from server/cli/CMakeLists.txt.
add_library(kaon_tokenize_command ${CMAKE_CURRENT_LIST_DIR}/tokenize_command.cc)
target_link_libraries(kaon_tokenize_command PUBLIC kaon_tokenizer kaon_common nlohmann_json::nlohmann_json)
