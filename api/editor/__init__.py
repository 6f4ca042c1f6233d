"""The grid editor page (``GET /plans/{id}/edit``): page.py builds it, editor.js/.css run it."""
