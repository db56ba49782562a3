"""Example trainers that record through isoflop.Recorder (torch is needed to run them)."""
