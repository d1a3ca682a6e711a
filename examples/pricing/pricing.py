"""pricing.py: the prices of an order of n items.

The example repository of `hswarm code` (README, "Coding swarm"): four functions are stubs whose
docstrings give their values at x = 0, 1, 2 (and 3), in the form f(0)=V; test_pricing.py fails
until they are written.
"""


def base_price(x):
    """f(0)=3 f(1)=5 f(2)=7"""
    return 2 * x + 3


def shipping(x):
    """f(0)=22 f(1)=35 f(2)=48"""
    raise NotImplementedError


def loyalty_points(x):
    """f(0)=0 f(1)=15 f(2)=30"""
    raise NotImplementedError


def bulk_price(x):
    """f(0)=46 f(1)=38 f(2)=32 f(3)=28"""
    raise NotImplementedError


def tiles(x):
    """f(0)=6 f(1)=7 f(2)=10 f(3)=15"""
    raise NotImplementedError


def receipt(n):
    """The total of an order: its base price and its shipping."""
    return base_price(n) + shipping(n)
