"""Writes of the closed loop: runs, snapshots, the registry, generation and queue priorities.

Nothing here imports torch: the ML core is passed in (as functions) by the Celery tasks, which
import it inside their bodies on the worker.
"""
