// Drift statistics (drift_stats.h), ported from the SciPy 1.10 / NumPy 1.24 code paths that
// ks_2samp, chisquare, wasserstein_distance and jensenshannon take, so that each number can
// be compared with SciPy's on golden cases; where the order of a floating-point sum differs
// (NumPy sums pairwise, BLAS multiplies blocked) results agree to ~1e-12 relative, which the
// golden test allows. Column handling and test selection live in drift.cc.
#include "eval/drift_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace pocket::eval {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;

double Clip01(double p) { return std::isnan(p) ? p : std::min(1.0, std::max(0.0, p)); }

// Pr(D_{n,n} >= h/n) by the alternating sum of binomial ratios in Horner form
// (scipy.stats._stats_py._compute_prob_outside_square).
double ProbOutsideSquare(int64_t n, int64_t h) {
  double p = 0.0;
  for (int64_t k = n / h; k >= 0; --k) {
    double p1 = 1.0;
    for (int64_t j = 0; j < h; ++j) {
      p1 = static_cast<double>(n - k * h - j) * p1 / static_cast<double>(n + k * h + j + 1);
    }
    p = p1 * (1.0 - p);
  }
  return 2 * p;
}

// 1 - (paths from (0,0) to (m,n) staying strictly inside |x/m - y/n| < h/lcm) / binom(m+n,n),
// computed directly as a probability column by column (Hodges' inside method in Viehmann's
// numerically stable 1-p form; scipy.stats._stats_pythran._compute_outer_prob_inside_method).
double OuterProbInsideMethod(int64_t m, int64_t n, int64_t g, int64_t h) {
  if (m < n) std::swap(m, n);
  const int64_t mg = m / g;
  const int64_t ng = n / g;
  int64_t minj = 0;
  int64_t maxj = std::min<int64_t>(
      static_cast<int64_t>(std::ceil(static_cast<double>(h) / static_cast<double>(mg))), n + 1);
  int64_t curlen = maxj - minj;
  const int64_t len_a = std::min<int64_t>(2 * maxj + 2, n + 1);
  std::vector<double> a(static_cast<size_t>(len_a), 1.0);
  for (int64_t j = minj; j < std::min(maxj, len_a); ++j) a[static_cast<size_t>(j)] = 0.0;
  for (int64_t i = 1; i <= m; ++i) {
    const int64_t lastminj = minj;
    const int64_t lastlen = curlen;
    minj = std::max<int64_t>(static_cast<int64_t>(std::floor(static_cast<double>(ng * i - h) /
                                                             static_cast<double>(mg))) +
                                 1,
                             0);
    minj = std::min(minj, n);
    maxj = std::min<int64_t>(
        static_cast<int64_t>(std::ceil(static_cast<double>(ng * i + h) / static_cast<double>(mg))),
        n + 1);
    if (maxj <= minj) return 1.0;
    double val = minj == 0 ? 0.0 : 1.0;
    for (int64_t jj = 0; jj < maxj - minj; ++jj) {
      const int64_t j = jj + minj;
      const int64_t src = jj + minj - lastminj;
      const double prev = src < len_a ? a[static_cast<size_t>(src)] : 1.0;
      val = (prev * static_cast<double>(i) + val * static_cast<double>(j)) /
            static_cast<double>(i + j);
      a[static_cast<size_t>(jj)] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) {
      const int64_t end = std::min(len_a, maxj - minj + (lastlen - curlen));
      for (int64_t j = maxj - minj; j < end; ++j) a[static_cast<size_t>(j)] = 1.0;
    }
  }
  return a[static_cast<size_t>(maxj - minj - 1)];
}

// One-sided Smirnov survival function P(D+_n >= x) by the Birnbaum-Tingey sum, each
// (positive) term in logs so that no binomial overflows; scipy.special.smirnov's value.
double SmirnovSf(int64_t n, double x) {
  if (x <= 0) return 1.0;
  if (x >= 1) return 0.0;
  const double dn = static_cast<double>(n);
  const int64_t last = static_cast<int64_t>(std::floor(dn * (1 - x)));
  const double lgn1 = std::lgamma(dn + 1);
  double sum = 0;
  for (int64_t j = 0; j <= last; ++j) {
    const double dj = static_cast<double>(j);
    const double a = 1 - x - dj / dn;
    if (a <= 0) continue;  // (1 - x - j/n)^(n-j) with n-j >= 1
    const double b = x + dj / dn;
    const double log_term = lgn1 - std::lgamma(dj + 1) - std::lgamma(dn - dj + 1) +
                            (dn - dj) * std::log(a) + (dj - 1) * std::log(b);
    sum += std::exp(log_term);
  }
  return Clip01(x * sum);
}

constexpr int kE128 = 128;
const double kEp128 = std::ldexp(1.0, kE128);
const double kEm128 = std::ldexp(1.0, -kE128);

using Matrix = std::vector<double>;  // row-major m x m

Matrix MatMul(const Matrix& x, const Matrix& y, size_t m) {
  Matrix out(m * m, 0.0);
  for (size_t i = 0; i < m; ++i) {
    for (size_t k = 0; k < m; ++k) {
      const double xik = x[i * m + k];
      if (xik == 0) continue;
      for (size_t j = 0; j < m; ++j) out[i * m + j] += xik * y[k * m + j];
    }
  }
  return out;
}

// Pr(D_n <= d) by Durbin's matrix as Marsaglia, Tsang and Wang compute it, with the powers
// rescaled by 2^128 to keep the dynamic range (scipy.stats._ksstats._kolmogn_DMTW).
double KolmogorovCdfDurbin(int64_t n, double d) {
  if (d >= 1.0) return 1.0;
  const double nd = static_cast<double>(n) * d;
  if (nd <= 0.5) return 0.0;
  const int64_t k = static_cast<int64_t>(std::ceil(nd));
  const double h = static_cast<double>(k) - nd;
  const size_t m = static_cast<size_t>(2 * k - 1);
  Matrix hm(m * m, 0.0);
  std::vector<double> v(m), w(m);
  double fac = 1.0;
  for (size_t j = 1; j <= m; ++j) {
    v[j - 1] = 1.0 - std::pow(h, static_cast<double>(j));
    w[j - 1] = fac;
    fac /= static_cast<double>(j);
    v[j - 1] *= fac;
  }
  const double tt = std::pow(std::max(2 * h - 1.0, 0.0), static_cast<double>(m)) -
                    2 * std::pow(h, static_cast<double>(m));
  v[m - 1] = (1.0 + tt) * fac;
  for (size_t i = 1; i < m; ++i) {
    for (size_t r = i - 1; r < m; ++r) hm[r * m + i] = w[r - (i - 1)];
  }
  for (size_t r = 0; r < m; ++r) hm[r * m] = v[r];
  for (size_t c = 0; c < m; ++c) hm[(m - 1) * m + c] = v[m - 1 - c];
  Matrix pwr(m * m, 0.0);
  for (size_t i = 0; i < m; ++i) pwr[i * m + i] = 1.0;
  int64_t nn = n;
  int expnt = 0;
  int hexpnt = 0;
  const size_t kk = static_cast<size_t>(k - 1);
  while (nn > 0) {
    if (nn % 2) {
      pwr = MatMul(pwr, hm, m);
      expnt += hexpnt;
    }
    hm = MatMul(hm, hm, m);
    hexpnt *= 2;
    if (std::abs(hm[kk * m + kk]) > kEp128) {
      for (double& x : hm) x /= kEp128;
      hexpnt += kE128;
    }
    nn /= 2;
  }
  double p = pwr[kk * m + kk];
  const double dn = static_cast<double>(n);
  for (int64_t i = 1; i <= n; ++i) {
    p = static_cast<double>(i) * p / dn;
    if (std::abs(p) < kEm128) {
      p *= kEp128;
      expnt -= kE128;
    }
  }
  if (expnt != 0) p = std::ldexp(p, expnt);
  return Clip01(p);
}

// Pelz-Good's asymptotic series for Pr(D_n <= x) (scipy.stats._ksstats._kolmogn_PelzGood).
double KolmogorovCdfPelzGood(int64_t n, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double pi2 = kPi * kPi, pi4 = pi2 * pi2, pi6 = pi4 * pi2;
  const double sqrt2pi = std::sqrt(2 * kPi);
  const double z = std::sqrt(static_cast<double>(n)) * x;
  const double z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2;
  const double qlog = -pi2 / 8 / z2;
  if (qlog < -708) return 0.0;
  double q = std::exp(qlog);
  const double k1a = -z2;
  const double k1b = pi2 / 4;
  const double k2a = 6 * z6 + 2 * z4;
  const double k2b = (2 * z4 - 5 * z2) * pi2 / 4;
  const double k2c = pi4 * (1 - 2 * z2) / 16;
  const double k3d = pi6 * (5 - 30 * z2) / 64;
  const double k3c = pi4 * (-60 * z2 + 212 * z4) / 16;
  const double k3b = pi2 * (135 * z4 - 96 * z6) / 4;
  const double k3a = -30 * z6 - 90 * std::pow(z, 8);
  double kv[4] = {0, 0, 0, 0};
  const int64_t maxk = static_cast<int64_t>(std::ceil(16 * z / kPi));
  for (int64_t k = maxk; k > 0; --k) {
    const double mm = static_cast<double>(2 * k - 1);
    const double m2 = mm * mm, m4 = m2 * m2, m6 = m4 * m2;
    const double qpower = std::pow(q, static_cast<double>(8 * k));
    const double coeffs[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                              k3a + k3b * m2 + k3c * m4 + k3d * m6};
    for (int i = 0; i < 4; ++i) kv[i] = kv[i] * qpower + coeffs[i];
  }
  const double denom[4] = {z, 6 * z4, 72 * std::pow(z, 7), 6480 * std::pow(z, 10)};
  for (int i = 0; i < 4; ++i) kv[i] = kv[i] * q * sqrt2pi / denom[i];
  q = std::exp(-pi2 / 2 / z2);
  double k2extra = 0, k3extra = 0;
  const double sqrt3z = std::sqrt(3.0) * z;
  for (int64_t k = maxk; k > 0; --k) {
    const double ks = static_cast<double>(k);
    const double ks2 = ks * ks;
    const double qp = std::pow(q, ks2);
    k2extra += ks2 * qp;
    k3extra += (sqrt3z + kPi * ks) * (sqrt3z - kPi * ks) * ks2 * qp;
  }
  kv[2] += k2extra * pi2 * sqrt2pi / (-36 * z3);
  kv[3] += k3extra * pi2 * sqrt2pi / (216 * z6);
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += kv[i] / std::pow(static_cast<double>(n), i / 2.0);
  return sum;
}

double LogNFactorialDivNPowN(double n) {
  static constexpr double kStirling[] = {-2.955065359477124183e-2,  6.4102564102564102564e-3,
                                         -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                                         -5.952380952380952381e-4,  7.9365079365079365079e-4,
                                         -2.7777777777777777778e-3, 8.3333333333333333333e-2};
  const double rn = 1.0 / n;
  double poly = 0;
  for (double c : kStirling) poly = poly * (rn / n) + c;
  return std::log(n) / 2 - n + std::log(2 * kPi) / 2 + rn * poly;
}

// Regularized lower incomplete gamma P(a, x) by its series (x < a + 1) and upper Q(a, x) by
// Lentz's continued fraction (x >= a + 1); each converges fast in its region.
double GammaSeriesP(double a, double x) {
  double term = 1.0 / a, sum = term;
  for (int i = 1; i < 100000; ++i) {
    term *= x / (a + i);
    sum += term;
    if (std::abs(term) < std::abs(sum) * 1e-17) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

double GammaContinuedFractionQ(double a, double x) {
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, f = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = d * c;
    f *= delta;
    if (std::abs(delta - 1) < 1e-17) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * f;
}

// NumPy's pairwise summation is what np.sum does for more than 8 values; a plain loop is
// within a few ulps of it for the sizes here, which the golden tolerance covers.
double Sum(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v;
  return s;
}

// x * log(x / y) as scipy.special.rel_entr.
double RelEntr(double x, double y) {
  if (std::isnan(x) || std::isnan(y)) return kNaN;
  if (x > 0 && y > 0) return x * std::log(x / y);
  if (x == 0 && y >= 0) return 0;
  return kInf;
}

}  // namespace

double KolmogorovSf(int64_t n, double x) {
  if (n <= 0 || std::isnan(x)) return kNaN;
  if (x >= 1.0) return 0.0;
  if (x <= 0.0) return 1.0;
  const double dn = static_cast<double>(n);
  const double t = dn * x;
  if (t <= 1.0) {  // Ruben-Gambino: 1/2n <= x <= 1/n
    if (t <= 0.5) return 1.0;
    double prob;
    if (n <= 140) {
      prob = 1.0;
      for (int64_t i = 1; i <= n; ++i) prob *= static_cast<double>(i) * (1.0 / dn) * (2 * t - 1);
    } else {
      prob = std::exp(LogNFactorialDivNPowN(dn) + dn * std::log(2 * t - 1));
    }
    return Clip01(1.0 - prob);
  }
  if (t >= dn - 1) return Clip01(2 * std::pow(1.0 - x, dn));  // Ruben-Gambino
  if (x >= 0.5) return Clip01(2 * SmirnovSf(n, x));           // exact: 2 * smirnov
  const double nxsquared = t * x;
  if (n <= 140) {
    // SciPy uses Pomeranz's recursion for 0.754693 < n x^2 <= 4; Durbin's matrix is exact
    // there too (m <= 2 sqrt(4 * 140) + 1 = 47 rows), so it stands in for it.
    if (nxsquared <= 4) return Clip01(1.0 - KolmogorovCdfDurbin(n, x));
    return Clip01(2 * SmirnovSf(n, x));
  }
  if (nxsquared >= 370.0) return 0.0;
  if (nxsquared >= 2.2) return Clip01(2 * SmirnovSf(n, x));
  double cdf;
  if (nxsquared >= 18.0) {
    cdf = 1.0;
  } else if (n <= 100000 && dn * std::pow(x, 1.5) <= 1.4) {
    cdf = KolmogorovCdfDurbin(n, x);
  } else {
    cdf = KolmogorovCdfPelzGood(n, x);
  }
  return Clip01(1.0 - cdf);
}

KsResult KsTwoSample(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const int64_t n1 = static_cast<int64_t>(a.size());
  const int64_t n2 = static_cast<int64_t>(b.size());
  // The ECDF difference at every observation (scipy: searchsorted(side='right') over the
  // concatenated samples); D is the larger of its maximum and minus its minimum.
  double max_s = -kInf, min_s = kInf;
  auto visit = [&](double x) {
    const double c1 = static_cast<double>(std::upper_bound(a.begin(), a.end(), x) - a.begin()) /
                      static_cast<double>(n1);
    const double c2 = static_cast<double>(std::upper_bound(b.begin(), b.end(), x) - b.begin()) /
                      static_cast<double>(n2);
    const double diff = c1 - c2;
    max_s = std::max(max_s, diff);
    min_s = std::min(min_s, diff);
  };
  for (double x : a) visit(x);
  for (double x : b) visit(x);
  const double neg_min = std::min(1.0, std::max(0.0, -min_s));
  KsResult r;
  r.statistic = neg_min > max_s ? neg_min : max_s;
  const int64_t g = std::gcd(n1, n2);
  double prob = kNaN;
  bool exact = std::max(n1, n2) <= 10000;  // scipy's MAX_AUTO_N
  if (exact) {
    const int64_t lcm = (n1 / g) * n2;
    const int64_t h = static_cast<int64_t>(std::nearbyint(r.statistic * static_cast<double>(lcm)));
    r.statistic = static_cast<double>(h) * 1.0 / static_cast<double>(lcm);
    if (h == 0) {
      prob = 1.0;
    } else if (n1 == n2) {
      prob = ProbOutsideSquare(n1, h);
    } else {
      prob = OuterProbInsideMethod(n1, n2, g, h);
    }
    // SciPy falls back to the asymptotic distribution when the exact sum misbehaves.
    if (!std::isfinite(prob) || prob < 0 || prob > 1) exact = false;
  }
  if (!exact) {
    const double m = static_cast<double>(std::max(n1, n2));
    const double n = static_cast<double>(std::min(n1, n2));
    const double en = m * n / (m + n);
    prob = KolmogorovSf(static_cast<int64_t>(std::nearbyint(en)), r.statistic);
  }
  r.p_value = Clip01(prob);
  r.exact = exact;
  return r;
}

double ChiSquareSf(double x, double df) {
  if (std::isnan(x)) return kNaN;
  if (x <= 0) return 1.0;
  if (std::isinf(x)) return 0.0;
  const double a = df / 2, hx = x / 2;
  if (hx < a + 1) return Clip01(1.0 - GammaSeriesP(a, hx));
  return Clip01(GammaContinuedFractionQ(a, hx));
}

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

TestValue ChiSquare(const std::vector<double>& observed, const std::vector<double>& expected) {
  TestValue r;
  double stat = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double diff = observed[i] - expected[i];
    if (expected[i] == 0) {
      stat += diff == 0 ? kNaN : kInf;  // NumPy: 0/0 is NaN, x/0 is inf
      continue;
    }
    stat += diff * diff / expected[i];
  }
  r.statistic = stat;
  r.p_value = ChiSquareSf(stat, static_cast<double>(observed.size()) - 1);
  return r;
}

TestValue TwoProportionZ(int64_t ones1, int64_t n1, int64_t ones2, int64_t n2) {
  TestValue r;
  const double p1 = static_cast<double>(ones1) / static_cast<double>(n1);
  const double p2 = static_cast<double>(ones2) / static_cast<double>(n2);
  const double pooled =
      (p1 * static_cast<double>(n1) + p2 * static_cast<double>(n2)) / static_cast<double>(n1 + n2);
  if (pooled == 0 || pooled == 1) {  // one category in both samples: no difference
    r.statistic = 0;
    r.p_value = 1;
    return r;
  }
  r.statistic =
      (p1 - p2) / std::sqrt(pooled * (1 - pooled) *
                            (1.0 / static_cast<double>(n1) + 1.0 / static_cast<double>(n2)));
  r.p_value = 2 * (1 - NormalCdf(std::abs(r.statistic)));
  return r;
}

double Wasserstein(std::vector<double> u, std::vector<double> v) {
  std::sort(u.begin(), u.end());
  std::sort(v.begin(), v.end());
  std::vector<double> all(u);
  all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  double sum = 0;
  const double nu = static_cast<double>(u.size()), nv = static_cast<double>(v.size());
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    const double x = all[i];
    const double cu = static_cast<double>(std::upper_bound(u.begin(), u.end(), x) - u.begin()) / nu;
    const double cv = static_cast<double>(std::upper_bound(v.begin(), v.end(), x) - v.begin()) / nv;
    sum += std::abs(cu - cv) * (all[i + 1] - all[i]);
  }
  return sum;
}

double StdDev(const std::vector<double>& x) {
  if (x.empty()) return kNaN;
  const double mean = Sum(x) / static_cast<double>(x.size());
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  return std::sqrt(ss / static_cast<double>(x.size()));
}

double JensenShannon(std::vector<double> p, std::vector<double> q, double base) {
  const double sp = Sum(p), sq = Sum(q);
  for (double& x : p) x /= sp;
  for (double& x : q) x /= sq;
  double left = 0, right = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = (p[i] + q[i]) / 2.0;
    left += RelEntr(p[i], m);
    right += RelEntr(q[i], m);
  }
  double js = left + right;
  js /= std::log(base);
  return std::sqrt(js / 2.0);
}

double Psi(const std::vector<double>& ref_shares, const std::vector<double>& cur_shares) {
  double psi = 0;
  for (size_t i = 0; i < ref_shares.size(); ++i) {
    psi += (ref_shares[i] - cur_shares[i]) * std::log(ref_shares[i] / cur_shares[i]);
  }
  return psi;
}

void FillZeroShares(std::vector<double>& shares) {
  double min_nonzero = kInf;
  for (double s : shares) {
    if (s != 0) min_nonzero = std::min(min_nonzero, s);
  }
  if (std::isinf(min_nonzero)) return;
  const double fill = min_nonzero <= 0.0001 ? min_nonzero / 1e6 : 0.0001;
  for (double& s : shares) {
    if (s == 0) s = fill;
  }
}

std::vector<double> SturgesEdges(const std::vector<double>& a, const std::vector<double>& b) {
  double lo = kInf, hi = -kInf;
  for (double x : a) lo = std::min(lo, x), hi = std::max(hi, x);
  for (double x : b) lo = std::min(lo, x), hi = std::max(hi, x);
  const double ptp = hi - lo;
  const double n = static_cast<double>(a.size() + b.size());
  if (lo == hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const double width = ptp / (std::log2(n) + 1.0);
  int64_t bins = 1;
  if (width != 0) bins = static_cast<int64_t>(std::ceil((hi - lo) / width));
  // numpy.linspace: start + i * step, the last edge exactly `stop`.
  std::vector<double> edges(static_cast<size_t>(bins + 1));
  const double step = (hi - lo) / static_cast<double>(bins);
  for (int64_t i = 0; i <= bins; ++i)
    edges[static_cast<size_t>(i)] = static_cast<double>(i) * step + lo;
  edges.back() = hi;
  return edges;
}

std::vector<int64_t> Histogram(const std::vector<double>& x, const std::vector<double>& edges) {
  std::vector<double> s(x);
  std::sort(s.begin(), s.end());
  std::vector<int64_t> cum(edges.size());
  for (size_t i = 0; i + 1 < edges.size(); ++i) {
    cum[i] = std::lower_bound(s.begin(), s.end(), edges[i]) - s.begin();
  }
  cum.back() = std::upper_bound(s.begin(), s.end(), edges.back()) - s.begin();
  std::vector<int64_t> counts(edges.size() - 1);
  for (size_t i = 0; i + 1 < edges.size(); ++i) counts[i] = cum[i + 1] - cum[i];
  return counts;
}

}  // namespace pocket::eval
