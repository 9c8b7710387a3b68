# KV cache block management and prefix caching. include()d from
# server/engine/CMakeLists.txt.
if(NOT TARGET PkgConfig::XXHASH)
  # GLOBAL: consumers in other directories link it through this library.
  pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET GLOBAL libxxhash)
endif()

add_library(kaon_kv_cache_manager
  ${CMAKE_CURRENT_LIST_DIR}/block_pool.cc
  ${CMAKE_CURRENT_LIST_DIR}/kv_cache_manager.cc)
target_link_libraries(kaon_kv_cache_manager
  PUBLIC kaon_common absl::flat_hash_map absl::strings
  PRIVATE PkgConfig::XXHASH)
