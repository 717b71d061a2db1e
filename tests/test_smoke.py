import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_the_admin_index_renders_for_a_superuser(admin_client):
    assert admin_client.get(reverse("admin:index")).status_code == 200
