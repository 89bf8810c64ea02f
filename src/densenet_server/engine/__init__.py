"""Who runs the model: in this process (local.LocalEngine), or in the engine process behind the HTTP fronts.

In production (`serve`), one engine process owns the model and its device and batches across every HTTP
front process; the fronts decode and crop images in parallel and send it uint8 crops over a Unix socket
(docs/architecture.md). The CLI, the benchmark's raw measurements and in-process tests use LocalEngine.
Importing this package imports nothing: the gunicorn master uses launcher.py before it forks the fronts.
"""
