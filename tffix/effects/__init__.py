"""Effects: the only code that changes the system (pip, activate scripts, the journal)."""
