// StopMatcher tests: a stop string split over several pieces is found and never released, text
// that may begin a stop string is held back exactly as long as it may, and held-back text is
// released by flush. Expected outputs are worked out by hand from the strings below.
#include "mlxn/engine/stop_matcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mlxn::engine {
namespace {

TEST(StopMatcherTest, StopStringSplitOverSeveralPiecesIsNeverReleased) {
  StopMatcher m({"<end>", "zzz"});
  bool stopped = false;
  std::string out;
  out += m.push("hello <", stopped);
  EXPECT_EQ(out, "hello ");  // "<" may begin "<end>"
  EXPECT_EQ(m.held(), 1u);
  out += m.push("e", stopped);
  out += m.push("n", stopped);
  EXPECT_EQ(out, "hello ");
  EXPECT_EQ(m.held(), 3u);
  EXPECT_FALSE(stopped);
  out += m.push("d> and more", stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "hello ");  // neither the stop string nor what follows it
  EXPECT_EQ(m.held(), 0u);
}

TEST(StopMatcherTest, TheEarliestStopStringWinsWithinOnePiece) {
  StopMatcher m({"cd", "b"});
  bool stopped = false;
  EXPECT_EQ(m.push("xabcd", stopped), "xa");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcherTest, HeldBackTextIsReleasedOnceRuledOutOrAtTheEnd) {
  StopMatcher m({"abc"});
  bool stopped = false;
  EXPECT_EQ(m.push("xa", stopped), "x");
  EXPECT_EQ(m.push("b", stopped), "");
  // "abd" rules the stop string out: all of it goes.
  EXPECT_EQ(m.push("d", stopped), "abd");
  // "aab": only "ab" can still begin "abc".
  EXPECT_EQ(m.push("aab", stopped), "a");
  EXPECT_EQ(m.held(), 2u);
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.flush(), "ab");  // generation ended without the stop string
  EXPECT_EQ(m.held(), 0u);
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcherTest, WithoutStopStringsNothingIsHeld) {
  StopMatcher m({});
  bool stopped = false;
  EXPECT_EQ(m.push("abc", stopped), "abc");
  EXPECT_EQ(m.push("", stopped), "");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.flush(), "");
}

}  // namespace
}  // namespace mlxn::engine
