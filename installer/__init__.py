"""Packaging (PyInstaller spec, build and smoke-test scripts)."""
