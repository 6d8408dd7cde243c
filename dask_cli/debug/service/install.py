def install(server):
    print("DEBUG-PRELOAD", type(server).__name__, flush=True)
