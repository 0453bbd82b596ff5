"""Output channel -> VerSe id mappings shared by the identification/labeling networks."""
STANDARD_LEVELS: list[int] = list(range(1, 25))      # C1-C7, T1-T12, L1-L5
EXTENDED_LEVELS: list[int] = [25, 26, 28]            # L6, sacrum, T13 (optional classes)
