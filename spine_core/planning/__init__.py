"""Surgical planning from the measured anatomy (Qt-free): pedicle screw suggestions, and the check of any
screw against the cortex with its expected Gertzbein-Robbins grade (screws.py, clearance.py); screws.json
(files.py)."""
from spine_core.planning.clearance import Clearance, clearance, gertzbein_robbins
from spine_core.planning.screws import (DIAMETERS_MM, LENGTHS_MM, NotPlanned, Screw, VertebraBones, check_screw,
                                        suggest_screw, suggest_screws)

__all__ = ["Clearance", "clearance", "gertzbein_robbins", "DIAMETERS_MM", "LENGTHS_MM", "NotPlanned", "Screw",
           "VertebraBones", "check_screw", "suggest_screw", "suggest_screws"]
