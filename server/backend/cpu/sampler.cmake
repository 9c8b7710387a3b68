# kaon_sampler: the CPU sampler (CpuSampler) over the backend's sampling table.
# include()d from server/backend/cpu/CMakeLists.txt; sources are spelled relative
# to this file.
add_library(kaon_sampler ${CMAKE_CURRENT_LIST_DIR}/sampler.cc ${CMAKE_CURRENT_LIST_DIR}/sampler_kernels.cc)
target_link_libraries(kaon_sampler
  PUBLIC kaon_common kaon_kernels_cpu)
# SamplingWeight's vector twin must round as the scalar function does: no
# contraction into fused multiply-adds, whatever -march a build adds.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/sampler.cc ${CMAKE_CURRENT_LIST_DIR}/sampler_kernels.cc
  PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
