"""`python -m scalerec` (and `torchrun -m scalerec train …`) runs the CLI."""

from scalerec.cli import main

main()
