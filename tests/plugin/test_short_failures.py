"""Our errors in a fixture read as a few lines naming the cause and the fix, not a traceback.

``--full-trace`` and DEBUG logging still show the whole chain. The same cases against a real
engine are in tests/integration/test_bad_input.py.
"""

from __future__ import annotations

import pytest

from tests.support import error_section

NEEDS_CLUSTER = "def test_needs_cluster(kind_cluster): pass\n"
NO_ENGINE = "unix:///nonexistent/docker.sock"
# What the chain below RuntimeUnavailable is made of: the SDK and its HTTP stack.
SDK_FRAMES = ("urllib3", "requests/adapters.py", "docker/api/client.py")


@pytest.fixture
def no_docker(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    pytester.makepyfile(NEEDS_CLUSTER)


@pytest.mark.usefixtures("no_docker")
def test_unreachable_docker_is_three_lines_naming_the_fix(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    section = error_section(result.stdout.str(), "test_needs_cluster")
    assert len(section) <= 3, "\n".join(section)
    text = "\n".join(section)
    assert f"RuntimeUnavailable: cannot reach a Docker engine at DOCKER_HOST={NO_ENGINE}" in text
    assert "Start dockerd" in text
    assert "--full-trace" in text
    assert "Traceback" not in result.stdout.str()
    assert not any(frame in result.stdout.str() for frame in SDK_FRAMES)


@pytest.mark.parametrize("option", ["--full-trace", "--log-level=DEBUG"])
@pytest.mark.usefixtures("no_docker")
def test_full_trace_and_debug_logging_keep_the_chain(
    pytester: pytest.Pytester, option: str
) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", option)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "The above exception was the direct cause of the following exception" in out
    assert any(frame in out for frame in SDK_FRAMES)


FAKE_ENGINE = """
import pytest
from pytest_kindcluster.errors import ReadinessTimeout
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime.fake import FakeRuntime

def never_ready(api, **kwargs):
    raise ReadinessTimeout(1, {"apiserver /readyz": "ok", "nodes Ready": "0/1 Ready"})

readiness.wait_ready = never_ready

@pytest.fixture(scope="session")
def kind_runtime():
    return FakeRuntime(images={IMAGES})
"""


def test_a_readiness_timeout_is_its_state_and_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_ENGINE.replace("{IMAGES}", "None"))
    pytester.makepyfile(NEEDS_CLUSTER)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--kind-logs-dir={pytester.path / 'logs'}"
    )
    result.assert_outcomes(errors=1)
    section = error_section(result.stdout.str(), "test_needs_cluster")
    text = "\n".join(section)
    assert section[1] == "ReadinessTimeout: cluster not ready after 1s; last observed state:"
    assert "  nodes Ready: 0/1 Ready" in text
    assert "give it more time: --kind-timeout" in text
    assert "phases:" not in text  # the terminal has them, phase by phase
    # The header, the message (4 lines here), the logs, the fix, "rolled back" and where the
    # traceback is.
    assert len(section) <= 9, text
    assert "Traceback" not in result.stdout.str()


def test_a_missing_image_is_a_few_lines(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_ENGINE.replace("{IMAGES}", "{}"))
    pytester.makepyfile(NEEDS_CLUSTER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    section = error_section(result.stdout.str(), "test_needs_cluster")
    assert section[1].startswith("ImageError: image(s) pytest-kindcluster/node:v1.37.2 not in")
    assert "node-image build" in "\n".join(section)
    assert len(section) <= 6, "\n".join(section)
