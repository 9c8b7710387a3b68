# kaon_safetensors: memory-mapped safetensors loader (WeightStore).
# include()d from server/loading/CMakeLists.txt, so sources are spelled
# relative to this file rather than to the including directory.
add_library(kaon_safetensors
  ${CMAKE_CURRENT_LIST_DIR}/safetensors.cc
  ${CMAKE_CURRENT_LIST_DIR}/safetensors_file.cc
  ${CMAKE_CURRENT_LIST_DIR}/dtype_convert.cc)
target_link_libraries(kaon_safetensors
  PUBLIC kaon_common absl::status absl::statusor
  PRIVATE absl::strings nlohmann_json::nlohmann_json)
