# kaon_safetensors_writer: writing single-file safetensors checkpoints.
# include()d from server/cli/random_model.cmake (its first user); sources are
# spelled relative to this file. include_guard lets another CMakeLists include
# it too.
include_guard(GLOBAL)
add_library(kaon_safetensors_writer ${CMAKE_CURRENT_LIST_DIR}/safetensors_writer.cc)
target_link_libraries(kaon_safetensors_writer
  PUBLIC kaon_safetensors absl::statusor
  PRIVATE absl::strings nlohmann_json::nlohmann_json)
