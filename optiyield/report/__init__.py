"""Reports: result files, figures and (later) HTML."""
