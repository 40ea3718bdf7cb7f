"""Test suites shipped with the package (need pytest), so extensions get them for free."""
