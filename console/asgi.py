import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
# Build the Django app before anything imports models (consumers do).
django_app = get_asgi_application()

application = django_app
