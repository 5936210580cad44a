"""Generates rdp_reference.csv, the accuracy bar of veil-dp's accountants.

For each grid point (noise multiplier sigma, Poisson sampling rate q, steps T,
delta) it records:

- eps_rdp_dpacc: Google's dp-accounting RdpAccountant (default orders);
- eps_rdp_exact: the same orders and the same RDP-to-(eps, delta) conversion
  (dp-accounting's compute_epsilon), but with log A_alpha computed by adaptive
  numerical integration (scipy.integrate.quad) of
      A_alpha = E_{z ~ N(0, s^2)} [ (1 - q + q exp((2z - 1) / (2 s^2)))^alpha ].
  dp-accounting 0.6 sums the absolute values of the series terms at
  fractional orders, which overstates A_alpha; this column is the
  independent check that shows by how much;
- eps_pld_dpacc: dp-accounting's PLDAccountant (default discretization).

Run with dp-accounting 0.6.0 (pip install dp-accounting==0.6.0):
    python3 make_reference.py > rdp_reference.csv
The Rust tests read the CSV; they never run Python.
"""

import math
import sys

import dp_accounting
import numpy as np
from dp_accounting.rdp import rdp_privacy_accountant as rdpa
from scipy import integrate

ORDERS = list(rdpa.DEFAULT_RDP_ORDERS)
SIGMAS = [0.5, 1.0, 2.0, 5.0, 10.0]
RATES = [0.001, 0.01, 0.1, 1.0]
STEPS = [1, 10, 100, 1000, 10000]
DELTAS = [1e-5, 1e-6]


def log_f(z, q, s):
    """log(1 - q + q exp((2z - 1) / (2 s^2)))."""
    return np.logaddexp(math.log1p(-q), math.log(q) + (2 * z - 1) / (2 * s * s))


def log_a_exact(q, s, alpha):
    if q == 1.0:
        return alpha * (alpha - 1) / (2 * s * s)
    lo, hi = -60 * s - 20, alpha + 60 * s + 20
    log_phi = lambda z: -z * z / (2 * s * s) - math.log(s * math.sqrt(2 * math.pi))
    g = lambda z: log_phi(z) + alpha * float(log_f(z, q, s))
    zs = np.linspace(lo, hi, 200001)
    m = float(np.max(log_phi(zs) + alpha * log_f(zs, q, s)))
    points = [0.0, 0.5, alpha]
    if m < 20:
        # A = 1 + D with D = E[expm1(alpha log f)]: no cancellation near A = 1.
        def d_fn(z):
            v = alpha * float(log_f(z, q, s))
            lp = log_phi(z)
            return math.exp(lp) * math.expm1(v) if v < 30 else math.exp(lp + v) - math.exp(lp)
        d, _ = integrate.quad(d_fn, lo, hi, points=points, limit=2000, epsabs=0, epsrel=1e-11)
        return math.log1p(d)
    # Large A: integrate exp(g - m) and add m back.
    a, _ = integrate.quad(lambda z: math.exp(g(z) - m), lo, hi, points=points, limit=2000,
                          epsabs=0, epsrel=1e-11)
    return m + math.log(a)


def main():
    out = sys.stdout
    out.write("noise_multiplier,sampling_rate,steps,delta,eps_rdp_dpacc,eps_rdp_exact,eps_pld_dpacc\n")
    cache = {}
    for s in SIGMAS:
        for q in RATES:
            cache[(s, q)] = np.array([log_a_exact(q, s, a) / (a - 1) for a in ORDERS])
    for s in SIGMAS:
        for q in RATES:
            for t in STEPS:
                event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(s))
                rdp_acc = dp_accounting.rdp.RdpAccountant(ORDERS)
                rdp_acc.compose(event, t)
                pld_acc = dp_accounting.pld.PLDAccountant()
                pld_acc.compose(event, t)
                for delta in DELTAS:
                    eps_dp = rdp_acc.get_epsilon(delta)
                    eps_exact, _ = rdpa.compute_epsilon(ORDERS, t * cache[(s, q)], delta)
                    eps_pld = pld_acc.get_epsilon(delta)
                    out.write(f"{s},{q},{t},{delta},{float(eps_dp)!r},{float(eps_exact)!r},{float(eps_pld)!r}\n")
                    out.flush()


if __name__ == "__main__":
    main()
