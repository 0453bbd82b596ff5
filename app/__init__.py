"""Entry points: the `spineplan` CLI and the GUI launcher."""
