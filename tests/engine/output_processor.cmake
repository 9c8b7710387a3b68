# Included from tests/engine/CMakeLists.txt.
kaon_test(output_processor_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/output_processor_test.cc
  LIBS kaon_output_processor kaon_tokenizer nlohmann_json::nlohmann_json)
