# kaon_random_model_command: `kaon random-model` (random-weight checkpoints).
# include()d from server/cli/CMakeLists.txt; sources are spelled relative to
# this file.
include(${CMAKE_CURRENT_LIST_DIR}/../loading/safetensors_writer.cmake)
add_library(kaon_random_model_command ${CMAKE_CURRENT_LIST_DIR}/random_model_command.cc)
target_link_libraries(kaon_random_model_command
  PUBLIC kaon_models kaon_random_weights kaon_safetensors_writer absl::statusor
  PRIVATE kaon_common absl::strings absl::str_format Threads::Threads)
