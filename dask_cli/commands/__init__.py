"""One module per top-level command. Commands parse, call a function, print."""
