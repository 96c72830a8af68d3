"""Reference runners (models, training). Arrives with the runners issue; the package exists so
that the distribution's layout is stable from the start."""
