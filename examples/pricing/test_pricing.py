"""test_pricing.py: the tests of pricing.py, at the docstrings' inputs and at others.

    python3 -m unittest -q test_pricing              all of them
    python3 -m unittest -q test_pricing -k tiles     those of one function
"""
import unittest

from pricing import base_price, bulk_price, loyalty_points, receipt, shipping, tiles


class TestPricing(unittest.TestCase):
    def check(self, f, cases):
        for n, want in cases:
            self.assertEqual(f(n), want, "%s(%d)" % (f.__name__, n))

    def test_base_price(self):
        self.check(base_price, [(0, 3), (1, 5), (10, 23)])

    def test_shipping(self):
        self.check(shipping, [(0, 22), (1, 35), (2, 48), (5, 87), (12, 178)])

    def test_loyalty_points(self):
        self.check(loyalty_points, [(0, 0), (2, 30), (7, 105), (40, 600)])

    def test_bulk_price(self):
        self.check(bulk_price, [(0, 46), (3, 28), (5, 26), (9, 46), (20, 266)])

    def test_tiles(self):
        self.check(tiles, [(0, 6), (3, 15), (5, 31), (12, 150)])

    def test_receipt(self):
        self.check(receipt, [(0, 25), (4, 85)])


if __name__ == "__main__":
    unittest.main()
