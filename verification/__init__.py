"""boundlab.verification: Hypothesis properties that try to falsify every registered bound.

Run with ``pytest verification/`` (profile ``ci`` by default, ``--hypothesis-profile thorough`` or
``BOUNDLAB_PROFILE=thorough`` for >= 1000 examples per property) or ``boundlab verify``.
"""
