"""Annotation quality: agreement, gold accuracy, position and length bias, care.

``stats`` holds the arithmetic (no Django); ``gold`` and ``report`` read the database.
"""
