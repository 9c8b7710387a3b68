# Included from server/engine/CMakeLists.txt.
add_library(kaon_output_processor
  ${CMAKE_CURRENT_LIST_DIR}/output_processor.cc
  ${CMAKE_CURRENT_LIST_DIR}/stop_checker.cc)
target_link_libraries(kaon_output_processor PUBLIC kaon_tokenizer kaon_common)
