"""What a gradient-balancing method balances (`weighting.gradients`); kept apart so that the
configuration can name the choices without importing the methods."""

AUTO = "auto"  # the method's own first choice
PARAMETERS = "parameters"  # the gradients of the shared parameters
REPRESENTATION = "representation"  # the gradients of the cut shared representation (baselines/models/representation.py)
GRADIENT_CHOICES = (AUTO, PARAMETERS, REPRESENTATION)
