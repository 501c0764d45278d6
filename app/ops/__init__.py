"""Operations: the runbook's SQL files, run as commands."""
