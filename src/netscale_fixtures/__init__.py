"""Fixtures shared by netscale's tests and benchmarks (not part of the netscale API).

* :mod:`netscale_fixtures.small_specs`: small networks that train in seconds on a CPU;
* :mod:`netscale_fixtures.synthetic`: synthetic study stores (real scaled models, outcomes
  drawn from known laws) for fits, recommendations and reports without training.
"""
