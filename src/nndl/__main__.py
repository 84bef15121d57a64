"""`python -m nndl ...` is the same as `nndl ...`."""
import sys

from .cli import main

sys.exit(main())
