#include "runtime/bandwidth.h"

#include <gtest/gtest.h>

#include <vector>

namespace pocket::runtime {
namespace {

TEST(MeasureReadBandwidthTest, ReportsPlausibleFigureAndMethod) {
  auto m = MeasureReadBandwidth(8u << 20, 2, 2);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GT(m->bytes_per_s, 1e8);    // any machine reads more than 100 MB/s
  EXPECT_LT(m->bytes_per_s, 1e13);   // and less than 10 TB/s
  EXPECT_EQ(m->buffer_bytes, 8u << 20);
  EXPECT_NE(m->method.find("2 thread(s)"), std::string::npos);
}

TEST(MeasureReadBandwidthTest, RejectsBadArguments) {
  EXPECT_EQ(MeasureReadBandwidth(8u << 20, 0, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MeasureReadBandwidth(1024, 1, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(ComputeMeanSdTest, SampleStandardDeviation) {
  const std::vector<double> s = {2, 4, 4, 4, 5, 5, 7, 9};
  const MeanSd r = ComputeMeanSd(s);
  EXPECT_DOUBLE_EQ(r.mean, 5);
  EXPECT_NEAR(r.sd, 2.138089935, 1e-8);  // sqrt(32/7)
  EXPECT_EQ(ComputeMeanSd(std::vector<double>{3}).sd, 0);
}

}  // namespace
}  // namespace pocket::runtime
