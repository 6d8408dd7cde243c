"""Runs inside workers, nannies and schedulers. Never imports the client side,
ptpython or prompt-toolkit."""
