import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

PRINTED = re.compile(r"username (\S+)\s+password (\S+)")


def _create(username: str = "demo") -> tuple[str, str, str]:
    out = StringIO()
    call_command("create_demo_user", username=username, stdout=out)
    match = PRINTED.search(out.getvalue())
    assert match, out.getvalue()
    return out.getvalue(), match[1], match[2]


@pytest.mark.django_db
def test_create_demo_user_prints_a_password_that_signs_in():
    output, username, password = _create()

    assert "created" in output
    user = authenticate(username=username, password=password)
    assert user is not None
    assert user.is_superuser and user.is_staff


@pytest.mark.django_db
def test_create_demo_user_again_resets_the_password_of_the_same_user():
    _, _, old_password = _create()

    output, username, new_password = _create()

    assert "reset" in output
    assert new_password != old_password
    assert get_user_model().objects.filter(username=username).count() == 1
    assert authenticate(username=username, password=old_password) is None
    assert authenticate(username=username, password=new_password) is not None
