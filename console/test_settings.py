"""Settings for the test suite: the real ones, with a throwaway secret key."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production")
# Away from a console running on the same Redis (`make demo`): pub/sub ignores databases.
os.environ.setdefault("CHANNEL_LAYER_PREFIX", "console-test")

from console.settings import *  # noqa: F403

# Serve static files straight from the finders (static/, node_modules) without collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
