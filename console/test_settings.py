"""Settings for the test suite: the real ones, with a throwaway secret key."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production")

from console.settings import *  # noqa: F403
