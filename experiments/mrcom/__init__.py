"""MrCoM-suite experiments: the CaDM baseline through scenario adaptation (``cadm.py``)."""
