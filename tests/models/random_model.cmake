# include()d from tests/models/CMakeLists.txt.
include_guard(GLOBAL)
kaon_test(random_model_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/random_model_test.cc
  LIBS kaon_random_model_command kaon_safetensors_writer kaon_engine_core kaon_test_support)
