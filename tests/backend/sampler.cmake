# include()d from tests/backend/CMakeLists.txt.
kaon_test(sampler_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/sampler_semantics_test.cc ${CMAKE_CURRENT_LIST_DIR}/sampler_reference_test.cc
  LIBS kaon_sampler kaon_sampling_params kaon_test_support)
