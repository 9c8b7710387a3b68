# include()d from tests/engine/CMakeLists.txt.
kaon_test(kv_cache_manager_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_cache_manager_test.cc
  LIBS kaon_kv_cache_manager)
