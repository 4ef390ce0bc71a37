"""scalerec: pretrain, scale and transfer text-based sequential recommenders.

The package is one subpackage per stage (data → text → model → train → eval → scaling → transfer →
serve); see docs/INTERFACES.md for the contracts between them.
"""

__version__ = "0.1.0"
