import os

from django.core.signals import request_finished
from django.core.wsgi import get_wsgi_application

from alignweb.gc_freeze import freeze_after_warm_up, freeze_now

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignweb.settings")
application = get_wsgi_application()

# The web server's process: what it has loaded lives as long as it does (alignweb/gc_freeze.py).
freeze_now()
request_finished.connect(freeze_after_warm_up, dispatch_uid="alignweb.gc_freeze")
