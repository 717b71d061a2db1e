"""alignweb: collect human preferences, train on them, serve the tuned model back.

This package imports nothing: ``alignweb.conversations`` is shared with the ML core, which must
load without Django or Celery. The Celery app is bound when Django starts
(``annotation.apps.AnnotationConfig.ready``) and found by ``celery -A alignweb`` in
``alignweb.celery``.
"""
