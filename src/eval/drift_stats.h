// The statistics behind `pocket drift`, each written to give the numbers SciPy 1.10 gives
// for the same samples (checked on golden cases made by tests/golden/eval/
// make_drift_golden.py): the two-sample Kolmogorov-Smirnov test (ks_2samp, method 'auto'),
// the chi-squared goodness-of-fit test (chisquare), the first Wasserstein distance
// (wasserstein_distance), the Jensen-Shannon distance (spatial.distance.jensenshannon), and
// the two-proportion Z-test, PSI and binning the way Evidently computes them on top of SciPy
// and NumPy. Callers: eval/drift.cc and tests. Pure functions of their arguments; thread
// safe.
#pragma once

#include <cstdint>
#include <vector>

namespace pocket::eval {

struct KsResult {
  double statistic = 0;  // D = max |F_ref(x) - F_cur(x)|
  double p_value = 1;
  bool exact = true;  // false: Smirnov's asymptotic distribution (kstwo) gave p_value
};

// ks_2samp(a, b) two-sided, method='auto': the exact distribution when both sizes are at
// most 10000 (Hodges' lattice-path count, in Viehmann's 1-p form when sizes differ), else
// kstwo.sf(D, round(n*m/(n+m))). REQUIRES: a and b non-empty, no NaN. Takes copies to sort.
KsResult KsTwoSample(std::vector<double> a, std::vector<double> b);

// scipy.stats.kstwo.sf(d, n): P(D_n > d) for the one-sample two-sided Kolmogorov statistic
// (Simard & L'Ecuyer's selection of algorithms, as scipy.stats._ksstats._kolmogn; where SciPy
// uses Pomeranz's recursion this uses the Durbin matrix, which is also exact). REQUIRES n>=1.
double KolmogorovSf(int64_t n, double d);

// P(X > x) for X ~ chi-squared with `df` degrees of freedom (scipy.stats.chi2.sf), through
// the regularized incomplete gamma function. REQUIRES df > 0.
double ChiSquareSf(double x, double df);

// Standard normal CDF (scipy.stats.norm.cdf).
double NormalCdf(double z);

struct TestValue {
  double statistic = 0;
  double p_value = 1;  // NaN for distances, which have none
};

// scipy.stats.chisquare(observed, expected): sum (o-e)^2/e, p = chi2.sf(stat, k-1). An
// expected count of 0 with a positive observed count gives an infinite statistic, p = 0.
// REQUIRES: same sizes, k >= 2.
TestValue ChiSquare(const std::vector<double>& observed, const std::vector<double>& expected);

// Two-sided two-proportion Z-test of the share of ones (Evidently's z test): z = (p1-p2) /
// sqrt(P(1-P)(1/n1+1/n2)), p = 2(1 - Phi(|z|)); p = 1 when both samples are all zeros or all
// ones. REQUIRES n1, n2 > 0, ones <= n.
TestValue TwoProportionZ(int64_t ones1, int64_t n1, int64_t ones2, int64_t n2);

// scipy.stats.wasserstein_distance(u, v) (equal weights). REQUIRES non-empty.
double Wasserstein(std::vector<double> u, std::vector<double> v);

// Population standard deviation (numpy.std, ddof=0).
double StdDev(const std::vector<double>& x);

// scipy.spatial.distance.jensenshannon(p, q, base): p and q are normalized to sum 1 first.
// REQUIRES same sizes, non-negative, each with a positive sum.
double JensenShannon(std::vector<double> p, std::vector<double> q, double base);

// Evidently's PSI: sum (r - c) ln(r / c) over bins of shares with no zeros (see
// FillZeroShares).
double Psi(const std::vector<double>& ref_shares, const std::vector<double>& cur_shares);

// Evidently's get_binned_data(feel_zeroes=True): every zero share becomes min(nonzero)/1e6
// when the smallest non-zero share is at most 1e-4, else 1e-4. No-op when all are zero.
void FillZeroShares(std::vector<double>& shares);

// numpy.histogram_bin_edges(concat(a, b), bins='sturges'): ceil(ptp / (ptp / (log2(n)+1)))
// equal bins over [min, max] (one bin over [min-0.5, max+0.5] when all values are equal).
// REQUIRES a, b not both empty.
std::vector<double> SturgesEdges(const std::vector<double>& a, const std::vector<double>& b);

// numpy.histogram(x, edges)[0]: counts per bin, left-closed, the last bin closed on both
// sides; values outside [edges.front(), edges.back()] are not counted.
std::vector<int64_t> Histogram(const std::vector<double>& x, const std::vector<double>& edges);

}  // namespace pocket::eval
