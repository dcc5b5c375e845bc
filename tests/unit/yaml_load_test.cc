// LoadAllYaml (config/yaml_load.h): yaml-cpp's LoadAll without its endless loop on a stray ','.
#include "config/yaml_load.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace harness {
namespace {

TEST(LoadAllYaml, LoadsEveryDocumentAsLoadAllDoes) {
  std::vector<YAML::Node> docs = LoadAllYaml("a: 1\n---\n- x\n---\n");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0]["a"].as<int>(), 1);
  EXPECT_EQ(docs[1][0].as<std::string>(), "x");
  EXPECT_TRUE(docs[2].IsNull());
  EXPECT_TRUE(LoadAllYaml("").empty());
}

TEST(LoadAllYaml, SyntaxErrorsThrowAsInLoadAll) {
  EXPECT_THROW(LoadAllYaml("a: [1, 2\n"), YAML::ParserException);
}

// Each of these made yaml-cpp 0.7's LoadAll loop forever, allocating a null document per turn
// (jbeder/yaml-cpp#1040). Found by fuzz/item_file_fuzz.
TEST(LoadAllYaml, AStrayCommaOrFlowEndThrowsAtItsPlaceInsteadOfLoopingForever) {
  for (const char* text : {",", ",}", ", p]", ",]", "  ,}", "a: 1\n...\n,\n"}) {
    try {
      LoadAllYaml(text);
      ADD_FAILURE() << "loaded: " << text;
    } catch (const YAML::ParserException& e) {
      EXPECT_THAT(e.msg, ::testing::HasSubstr("where a document should start")) << text;
    }
  }
}

TEST(IsValidUtf8, TellsUtf8FromOtherBytes) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(IsValidUtf8("s\xed\xff\xff\xff"));  // what fuzz/config_fuzz found
  EXPECT_FALSE(IsValidUtf8("\xc3"));               // cut short
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));           // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));       // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));   // past U+10FFFF
}

}  // namespace
}  // namespace harness
