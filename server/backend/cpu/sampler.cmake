# kaon_sampler: the per-request CPU sampler (SamplingParams, Sampler).
# include()d from server/backend/cpu/CMakeLists.txt; sources are spelled relative
# to this file.
add_library(kaon_sampler
  ${PROJECT_SOURCE_DIR}/server/engine/sampling_params.cc
  ${CMAKE_CURRENT_LIST_DIR}/sampler.cc)
target_link_libraries(kaon_sampler
  PUBLIC kaon_common kaon_kernels_cpu absl::status
  PRIVATE absl::strings)
