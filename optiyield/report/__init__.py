"""Reports: result files (files.py), figures as PNG (figures.py) and the self-contained HTML page (html.py)."""
