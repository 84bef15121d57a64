"""`python -m nndl.cli ...` is the same as `nndl ...`."""
import sys

from . import main

sys.exit(main())
