"""Model training (torch). Nothing in spine_core, ui or viewers imports this package."""
