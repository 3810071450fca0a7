"""A session that needs no cluster: --kind-prune still runs at its start."""


def test_plain() -> None:
    pass
