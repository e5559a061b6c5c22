import os
import sys

from .cli import main

code = main()
if code and int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # A torchrun worker that failed has said why (one line, exit 2 for bad input or a refusal).
    # Its exit must not then depend on C++ teardown: under load, a worker that left its gloo group
    # was seen to abort in the interpreter's exit ("terminate called without an active
    # exception", SIGABRT) and the launcher reported a crash instead of exit 2. What matters is
    # written and flushed by now; end the process without running static destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
