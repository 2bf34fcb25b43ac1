"""pytest fixtures for the testbed, loaded by `-p vmgen_testbed.pytest_plugin` (see pyproject)."""

from vmgen_testbed.arm_fixtures import *  # noqa: F403
from vmgen_testbed.kube_fixtures import *  # noqa: F403
from vmgen_testbed.linux_fixtures import *  # noqa: F403
from vmgen_testbed.windows_fixtures import *  # noqa: F403
