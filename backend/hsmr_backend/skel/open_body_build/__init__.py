"""Build-time generator of the open default body (``python build.py assets``); never imported at run time."""
