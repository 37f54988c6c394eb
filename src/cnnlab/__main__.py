"""``python -m cnnlab`` (also what ``torchrun -m cnnlab`` runs)."""
from cnnlab.cli import main

raise SystemExit(main())
