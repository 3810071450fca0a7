"""A session whose node image does not exist, run by test_sessions.py."""


def test_needs_a_cluster(kind_cluster: object) -> None:
    raise AssertionError("the fixture must fail before this runs")
