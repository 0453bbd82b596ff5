"""Main window, panels, dialogs, the Worker and the evented Session model (Qt)."""
