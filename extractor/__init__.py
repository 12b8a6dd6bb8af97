"""qi-extractor: find quality issues of ML systems in interview transcripts.

Pipeline stages, one module each: ``segment`` -> ``embed`` -> ``classify`` ->
``discover``; ``review`` closes the loop with human corrections. One record type,
:class:`~extractor.types.Turn`, flows through. Heavy dependencies (torch,
sentence-transformers, spaCy) are imported only where used, so ``import extractor``
stays fast.
"""

__version__ = "0.1.0"
