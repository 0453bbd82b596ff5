"""Workflows the CLI, the workstation and batch runs share: whole tasks (analyse a study and write its
results) built on the core, without Qt."""
